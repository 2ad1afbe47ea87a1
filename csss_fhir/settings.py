"""The one settings object: every environment variable the service reads is read here, once."""

from __future__ import annotations

import ipaddress
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from csss_fhir.errors import ConfigurationError

ENVIRONMENTS = ("development", "testing", "production")
DEVELOPMENT_BASE_URL = "http://127.0.0.1:5000"  # `flask run`'s address
MAIL_BACKENDS = ("file", "smtp")
STORAGE_BACKENDS = ("file", "postgresql", "s3")
SMTP_SECURITY = ("starttls", "ssl", "none")
# Where background jobs run (jobs/): Celery workers through CELERY_BROKER_URL, a thread in
# each app process, or inline right after the request's commit (tests). "auto": Celery when
# a broker is configured, else the thread.
JOBS_MODES = ("auto", "celery", "thread", "inline")
_AE_TITLE = re.compile(r"[A-Za-z0-9_.\- ]{0,15}[A-Za-z0-9_.\-]")  # PS3.5 AE: 16, no "\\"


@dataclass(frozen=True)
class PacsDestination:
    """Where released AI results are sent by C-STORE (PACS_DESTINATION="AE@host:port")."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> PacsDestination:
        """Raises ConfigurationError for anything but AE@host:port with a valid AE and port."""
        title, at, address = value.strip().partition("@")
        host, colon, port = address.rpartition(":")
        if not (at and colon and host and port.isdigit() and 1 <= int(port) <= 65535
                and _AE_TITLE.fullmatch(title)):
            raise ConfigurationError(
                f"PACS_DESTINATION={value!r}; expected AE@host:port, e.g. "
                "PACS@pacs.hospital.example:11112 (AE title: 1 to 16 letters, digits, spaces "
                "or _-.; port 1-65535)")
        return cls(title, host.strip("[]"), int(port))


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class EndpointAllowlist:
    """Rest-hook endpoints that may be plain http or reach non-public addresses
    (SUBSCRIPTION_ENDPOINT_ALLOWLIST; the rule is in `subscriptions/endpoints.py`).

    Comma-separated entries of three kinds: a host name (`ehr.hospital.internal`), an IP
    address or network (`10.20.0.0/16`, `::1`), or a URL prefix (`http://ehr:8080/hooks/`).
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()
    prefixes: tuple[SplitResult, ...] = ()

    @classmethod
    def parse(cls, value: str) -> EndpointAllowlist:
        """Raises ConfigurationError for an entry that is none of the three kinds."""
        hosts: set[str] = set()
        networks: list[IPNetwork] = []
        prefixes: list[SplitResult] = []
        for entry in (e.strip() for e in value.split(",")):
            if not entry:
                continue
            if "://" in entry:
                parts = urlsplit(entry)
                if (parts.scheme not in ("http", "https") or not parts.hostname
                        or parts.username is not None or parts.query or parts.fragment):
                    raise ConfigurationError(
                        f"SUBSCRIPTION_ENDPOINT_ALLOWLIST: {entry!r} is not a URL prefix; "
                        "write http(s)://host[:port][/path], without user, query or fragment")
                prefixes.append(parts)
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass
            if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.\-]{0,251}[A-Za-z0-9])?", entry):
                raise ConfigurationError(
                    f"SUBSCRIPTION_ENDPOINT_ALLOWLIST: {entry!r} is not a host name, IP "
                    "address, network (10.0.0.0/8) or URL prefix (https://ehr.example.org/)")
            hosts.add(entry.lower().rstrip("."))
        return cls(frozenset(hosts), tuple(networks), tuple(prefixes))

    def names(self, url: str) -> bool:
        """Whether an entry names this URL: its host, an IP network holding its literal
        address, or a prefix (same scheme, host and port; the path on a segment boundary)."""
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        if host in self.hosts:
            return True
        try:
            if self.covers(ipaddress.ip_address(host)):
                return True
        except ValueError:
            pass
        for prefix in self.prefixes:
            path = prefix.path.rstrip("/")
            if ((parts.scheme, host, _port(parts)) == (prefix.scheme, prefix.hostname,
                                                       _port(prefix))
                    and (parts.path == path or parts.path.startswith(path + "/"))):
                return True
        return False

    def covers(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        """Whether an IP entry holds this address."""
        return any(address.version == network.version and address in network
                   for network in self.networks)


def _port(parts: SplitResult) -> int | None:
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:  # a port that is not a number: matches no entry
        return None


@dataclass(frozen=True)
class Settings:
    """Typed configuration; `from_environ` is the only reader of environment variables."""

    env: str = "development"
    instance_path: Path | None = None  # None: Flask's instance folder
    secret_key: str | None = None  # None: generated once into the instance folder (not production)
    jwt_secret_key: str | None = None
    database_url: str | None = None  # None: SQLite file in the instance folder
    # Connection pool per process (PostgreSQL): size it so workers x (size + overflow) stays
    # below the server's max_connections.
    db_pool_size: int = 5
    db_max_overflow: int = 10
    db_pool_timeout_seconds: float = 30.0
    # Upper bounds on every database call (PostgreSQL): connecting, and one statement.
    db_connect_timeout_seconds: int = 5
    db_statement_timeout_ms: int = 30_000
    # Reverse proxies in front of the service whose X-Forwarded-For/-Proto are trusted
    # (0: none; the client address is then the TCP peer, as rate limits and audit see it).
    trusted_proxy_hops: int = 0
    # Blob storage (scans, PDFs; csss_fhir/storage): "file" (STORAGE_DIR), "postgresql"
    # (the database's blob_content table) or "s3" (any S3-compatible store).
    storage_backend: str = "file"
    storage_dir: Path | None = None  # None: <instance>/storage
    s3_endpoint_url: str | None = None  # None: AWS
    s3_bucket: str | None = None
    s3_region: str | None = None
    s3_access_key_id: str | None = None  # None: boto3's credential chain (env, role...)
    s3_secret_access_key: str | None = None
    s3_prefix: str = ""
    model_path: str | None = None  # None: the demo model shipped in ml/
    confidence_threshold: float = 0.75
    # Blind read: the doctor records a provisional finding before the AI proposal is shown.
    blind_read: bool = False
    max_upload_mb: int = 10
    max_image_pixels: int = 50_000_000  # refuse larger images before decoding (decompression bombs)
    otp_expire_minutes: int = 10
    otp_step_up_minutes: int = 10
    access_token_minutes: int = 60
    cors_origins: tuple[str, ...] = ()
    mail_backend: str = "file"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_security: str = "starttls"
    smtp_timeout_seconds: float = 10.0  # per SMTP operation; a timeout after DATA: uncertain
    mail_from: str = "CSSS-FHIR <no-reply@localhost>"
    hospital_name: str = "CSSS-FHIR Demo Hospital"
    hospital_address: str = ""
    # Shown to patients on every page, in the help assistant's emergency answer and in the
    # report PDF: the public emergency number, and the hospital's number for questions.
    emergency_number: str = "112"
    hospital_phone: str = ""
    hospital_timezone: str = "UTC"  # IANA name; the UI and the PDF show times in it
    # The public root URL (https://csss.hospital.org) of Bundle links, Location and the SMART
    # configuration. Required in production; elsewhere DEVELOPMENT_BASE_URL. Never the Host
    # header: a client must not choose the links the server hands to others.
    base_url: str | None = None
    bcrypt_rounds: int = 12
    dicom_strip_identifying: bool = False  # store DICOM uploads without names, birth dates...
    # The DIMSE listener (`csss dicom listen`): our AE title, its port, and the calling AE
    # titles (PACS, modalities) it accepts; DICOM has no other authentication.
    dicom_ae_title: str = "CSSS"
    dicom_port: int = 11112
    dicom_allowed_ae_titles: tuple[str, ...] = ()
    dicomweb_max_request_mb: int = 200  # one STOW-RS request (each instance: MAX_UPLOAD_MB)
    # Released AI results (SR and Grad-CAM image) are sent here by C-STORE; None: kept only
    # for WADO-RS. PACS_MAX_ATTEMPTS: sends tried, with back-off, before one ends "failed".
    pacs_destination: PacsDestination | None = None
    pacs_max_attempts: int = 8
    # Rest-hook endpoints of FHIR Subscriptions must be https and resolve to public
    # addresses, except those named here (SSRF protection; subscriptions/endpoints.py).
    subscription_endpoint_allowlist: EndpointAllowlist = EndpointAllowlist()
    # Brute-force defences (security/ratelimit.py, security/lockout.py). The lockout lives in
    # the database, so it holds across gunicorn workers; rate limits need a shared storage
    # (redis://, memcached://) for that, and count per worker with the memory default.
    ratelimit_storage_uri: str = "memory://"
    auth_rate_limit_address: str = "60 per minute"
    auth_rate_limit_account: str = "20 per minute"
    lockout_failures: int = 5  # failures allowed; the next one locks the account
    lockout_minutes: int = 15  # first lock; each further lock doubles it (at most 24 h)
    # Background jobs (csss_fhir/jobs): where they run, when the sweep looks for lost work,
    # and how often a failing classification is tried before it ends as "Not assessable".
    celery_broker_url: str | None = None  # e.g. redis://127.0.0.1:6379/0; None: no broker
    jobs_mode: str = "auto"
    jobs_sweep_seconds: float = 30.0
    ai_deadline_seconds: int = 120  # a scan still PENDING_AI this long after upload is re-run
    ai_max_attempts: int = 3
    extra: Mapping[str, object] = field(default_factory=dict)  # Flask config overrides (tests)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Settings:
        """Build settings from environment variables; raise ConfigurationError on bad values."""

        def text(name: str) -> str | None:
            value = environ.get(name, "").strip()
            return value or None

        def number(name: str, default: float, kind: type = int) -> float:
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError as err:
                raise ConfigurationError(
                    f"{name}={raw!r} is not a valid {kind.__name__}"
                ) from err
            return value

        instance = text("CSSS_INSTANCE_PATH")
        storage = text("STORAGE_DIR")
        origins = tuple(o.strip() for o in (text("CORS_ORIGINS") or "").split(",") if o.strip())
        settings = cls(
            env=text("CSSS_ENV") or cls.env,
            instance_path=Path(instance) if instance else None,
            secret_key=text("SECRET_KEY"),
            jwt_secret_key=text("JWT_SECRET_KEY"),
            database_url=_with_driver(text("DATABASE_URL")),
            db_pool_size=number("DB_POOL_SIZE", cls.db_pool_size),
            db_max_overflow=number("DB_MAX_OVERFLOW", cls.db_max_overflow),
            db_pool_timeout_seconds=number("DB_POOL_TIMEOUT", cls.db_pool_timeout_seconds, float),
            db_connect_timeout_seconds=number("DB_CONNECT_TIMEOUT",
                                              cls.db_connect_timeout_seconds),
            db_statement_timeout_ms=number("DB_STATEMENT_TIMEOUT_MS",
                                           cls.db_statement_timeout_ms),
            trusted_proxy_hops=number("TRUSTED_PROXY_HOPS", cls.trusted_proxy_hops),
            storage_backend=text("STORAGE_BACKEND") or cls.storage_backend,
            storage_dir=Path(storage) if storage else None,
            s3_endpoint_url=text("S3_ENDPOINT_URL"),
            s3_bucket=text("S3_BUCKET"),
            s3_region=text("S3_REGION"),
            s3_access_key_id=text("S3_ACCESS_KEY_ID"),
            s3_secret_access_key=text("S3_SECRET_ACCESS_KEY"),
            s3_prefix=text("S3_PREFIX") or cls.s3_prefix,
            model_path=text("MODEL_PATH"),
            confidence_threshold=number("CONFIDENCE_THRESHOLD", cls.confidence_threshold, float),
            blind_read=_flag(text("BLIND_READ"), "BLIND_READ"),
            max_upload_mb=number("MAX_UPLOAD_MB", cls.max_upload_mb),
            otp_expire_minutes=number("OTP_EXPIRE_MINUTES", cls.otp_expire_minutes),
            otp_step_up_minutes=number("OTP_STEP_UP_MINUTES", cls.otp_step_up_minutes),
            access_token_minutes=number("ACCESS_TOKEN_MINUTES", cls.access_token_minutes),
            cors_origins=origins,
            mail_backend=text("MAIL_BACKEND") or cls.mail_backend,
            smtp_host=text("SMTP_HOST") or cls.smtp_host,
            smtp_port=number("SMTP_PORT", cls.smtp_port),
            smtp_user=text("SMTP_USER"),
            smtp_password=text("SMTP_PASSWORD"),
            smtp_security=text("SMTP_SECURITY") or cls.smtp_security,
            smtp_timeout_seconds=number("SMTP_TIMEOUT", cls.smtp_timeout_seconds, float),
            mail_from=text("MAIL_FROM") or cls.mail_from,
            hospital_name=text("HOSPITAL_NAME") or cls.hospital_name,
            hospital_address=text("HOSPITAL_ADDRESS") or cls.hospital_address,
            emergency_number=text("EMERGENCY_NUMBER") or cls.emergency_number,
            hospital_phone=text("HOSPITAL_PHONE") or cls.hospital_phone,
            hospital_timezone=text("HOSPITAL_TIMEZONE") or cls.hospital_timezone,
            base_url=text("BASE_URL"),
            bcrypt_rounds=number("BCRYPT_ROUNDS", cls.bcrypt_rounds),
            dicom_strip_identifying=_flag(text("DICOM_STRIP_IDENTIFYING"),
                                          "DICOM_STRIP_IDENTIFYING"),
            dicom_ae_title=text("DICOM_AE_TITLE") or cls.dicom_ae_title,
            dicom_port=number("DICOM_PORT", cls.dicom_port),
            dicom_allowed_ae_titles=tuple(
                t.strip() for t in (text("DICOM_ALLOWED_AE_TITLES") or "").split(",")
                if t.strip()),
            dicomweb_max_request_mb=number("DICOMWEB_MAX_REQUEST_MB",
                                           cls.dicomweb_max_request_mb),
            pacs_destination=(PacsDestination.parse(text("PACS_DESTINATION"))
                              if text("PACS_DESTINATION") else None),
            pacs_max_attempts=number("PACS_MAX_ATTEMPTS", cls.pacs_max_attempts),
            subscription_endpoint_allowlist=EndpointAllowlist.parse(
                text("SUBSCRIPTION_ENDPOINT_ALLOWLIST") or ""),
            ratelimit_storage_uri=text("RATELIMIT_STORAGE_URI") or cls.ratelimit_storage_uri,
            auth_rate_limit_address=text("AUTH_RATE_LIMIT_ADDRESS")
            or cls.auth_rate_limit_address,
            auth_rate_limit_account=text("AUTH_RATE_LIMIT_ACCOUNT")
            or cls.auth_rate_limit_account,
            lockout_failures=number("LOCKOUT_FAILURES", cls.lockout_failures),
            lockout_minutes=number("LOCKOUT_MINUTES", cls.lockout_minutes),
            celery_broker_url=text("CELERY_BROKER_URL"),
            jobs_mode=text("JOBS_MODE") or cls.jobs_mode,
            jobs_sweep_seconds=number("JOBS_SWEEP_SECONDS", cls.jobs_sweep_seconds, float),
            ai_deadline_seconds=number("AI_DEADLINE_SECONDS", cls.ai_deadline_seconds),
            ai_max_attempts=number("AI_MAX_ATTEMPTS", cls.ai_max_attempts),
        )
        settings.validate()
        return settings

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def jobs_runner(self) -> str:
        """Where jobs run: JOBS_MODE, or for "auto" Celery with a broker, else a thread."""
        if self.jobs_mode != "auto":
            return self.jobs_mode
        return "celery" if self.celery_broker_url else "thread"

    @property
    def public_root(self) -> str:
        """BASE_URL without a trailing slash, or DEVELOPMENT_BASE_URL outside production."""
        return (self.base_url or DEVELOPMENT_BASE_URL).rstrip("/")

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def dicomweb_max_request_bytes(self) -> int:
        return self.dicomweb_max_request_mb * 1024 * 1024

    def validate(self) -> None:
        """Refuse values the service cannot run with, naming the variable to fix."""
        if self.env not in ENVIRONMENTS:
            raise ConfigurationError(f"CSSS_ENV={self.env!r}; expected one of {ENVIRONMENTS}")
        if not 0.0 <= self.confidence_threshold <= 1.0:
            raise ConfigurationError("CONFIDENCE_THRESHOLD must be between 0 and 1")
        if self.max_upload_mb < 1:
            raise ConfigurationError("MAX_UPLOAD_MB must be at least 1")
        if self.db_pool_size < 1 or self.db_max_overflow < 0 or self.db_pool_timeout_seconds <= 0:
            raise ConfigurationError(
                "DB_POOL_SIZE must be at least 1, DB_MAX_OVERFLOW at least 0 and "
                "DB_POOL_TIMEOUT above 0")
        if not 0 <= self.trusted_proxy_hops <= 5:
            raise ConfigurationError("TRUSTED_PROXY_HOPS must be between 0 and 5")
        for name, value in (
            ("OTP_EXPIRE_MINUTES", self.otp_expire_minutes),
            ("OTP_STEP_UP_MINUTES", self.otp_step_up_minutes),
            ("ACCESS_TOKEN_MINUTES", self.access_token_minutes),
            ("LOCKOUT_MINUTES", self.lockout_minutes),
        ):
            if value < 1:
                raise ConfigurationError(f"{name} must be at least 1 minute")
        if self.lockout_failures < 1:
            raise ConfigurationError("LOCKOUT_FAILURES must be at least 1")
        if self.jobs_mode not in JOBS_MODES:
            raise ConfigurationError(f"JOBS_MODE={self.jobs_mode!r}; use one of {JOBS_MODES}")
        if self.jobs_mode == "celery" and not self.celery_broker_url:
            raise ConfigurationError("JOBS_MODE=celery needs CELERY_BROKER_URL "
                                     "(e.g. redis://127.0.0.1:6379/0)")
        for name, value in (("JOBS_SWEEP_SECONDS", self.jobs_sweep_seconds),
                            ("AI_DEADLINE_SECONDS", self.ai_deadline_seconds),
                            ("AI_MAX_ATTEMPTS", self.ai_max_attempts),
                            ("PACS_MAX_ATTEMPTS", self.pacs_max_attempts),
                            ("SMTP_TIMEOUT", self.smtp_timeout_seconds),
                            ("DB_CONNECT_TIMEOUT", self.db_connect_timeout_seconds),
                            ("DB_STATEMENT_TIMEOUT_MS", self.db_statement_timeout_ms)):
            if value <= 0:
                raise ConfigurationError(f"{name}={value!r}; it must be above 0")
        for name, title in (("DICOM_AE_TITLE", self.dicom_ae_title),
                            *(("DICOM_ALLOWED_AE_TITLES", t)
                              for t in self.dicom_allowed_ae_titles)):
            if not _AE_TITLE.fullmatch(title):
                raise ConfigurationError(
                    f"{name}: {title!r} is not an AE title; use 1 to 16 letters, digits, "
                    "spaces or _-. (no backslash)")
        if not 1 <= self.dicom_port <= 65535:
            raise ConfigurationError("DICOM_PORT must be between 1 and 65535")
        if self.dicomweb_max_request_mb < self.max_upload_mb:
            raise ConfigurationError(
                "DICOMWEB_MAX_REQUEST_MB must be at least MAX_UPLOAD_MB (one instance)")
        if self.mail_backend not in MAIL_BACKENDS:
            raise ConfigurationError(f"MAIL_BACKEND={self.mail_backend!r}; use 'file' or 'smtp'")
        if self.storage_backend not in STORAGE_BACKENDS:
            raise ConfigurationError(
                f"STORAGE_BACKEND={self.storage_backend!r}; use one of {STORAGE_BACKENDS}")
        if self.storage_backend == "s3" and not self.s3_bucket:
            raise ConfigurationError("STORAGE_BACKEND=s3 needs S3_BUCKET (the bucket's name)")
        if self.smtp_security not in SMTP_SECURITY:
            raise ConfigurationError(f"SMTP_SECURITY={self.smtp_security!r}; use {SMTP_SECURITY}")
        _check_timezone(self.hospital_timezone)
        if self.base_url is not None:
            parts = urlsplit(self.base_url)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.query:
                raise ConfigurationError(
                    f"BASE_URL={self.base_url!r} is not an http(s) URL; set the service's "
                    "public root, like https://csss.hospital.org")
        if self.production:
            for name, value in (("SECRET_KEY", self.secret_key),
                                ("JWT_SECRET_KEY", self.jwt_secret_key)):
                if not value or len(value) < 32:
                    raise ConfigurationError(
                        f"{name} must be set to a random value of at least 32 characters "
                        "when CSSS_ENV=production"
                    )
            if not self.base_url:
                raise ConfigurationError(
                    "BASE_URL must be set when CSSS_ENV=production (the public root URL, like "
                    "https://csss.hospital.org): links and Location headers are never built "
                    "from the client's Host header")

    def with_generated_secrets(self, instance_path: Path) -> Settings:
        """Fill missing development secrets from `<instance>/secrets`, creating them once.

        Production never gets here with a missing secret: `validate` refused it.
        """
        if self.secret_key and self.jwt_secret_key:
            return self
        path = instance_path / "dev-secrets"
        stored: dict[str, str] = {}
        if path.exists():
            for line in path.read_text().splitlines():
                key, _, value = line.partition("=")
                stored[key] = value
        changed = False
        for key in ("SECRET_KEY", "JWT_SECRET_KEY"):
            if not stored.get(key):
                stored[key] = secrets.token_urlsafe(48)
                changed = True
        if changed:
            instance_path.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text("".join(f"{k}={v}\n" for k, v in stored.items()))
            tmp.chmod(0o600)
            tmp.replace(path)
        return replace(
            self,
            secret_key=self.secret_key or stored["SECRET_KEY"],
            jwt_secret_key=self.jwt_secret_key or stored["JWT_SECRET_KEY"],
        )


def _with_driver(url: str | None) -> str | None:
    """PostgreSQL URLs as hosting platforms write them (postgres://, postgresql://) use the
    psycopg 3 driver this package installs."""
    if url is None:
        return None
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _check_timezone(name: str) -> None:
    """Refuse a HOSPITAL_TIMEZONE that is not an IANA zone name."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ConfigurationError(
            f"HOSPITAL_TIMEZONE={name!r} is not a time zone name; use an IANA name such as "
            "'Europe/Berlin' or 'UTC'") from err


def _flag(raw: str | None, name: str) -> bool:
    """A boolean variable: true/1/yes or false/0/no (unset: false)."""
    if raw is None:
        return False
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigurationError(f"{name}={raw!r}; use true or false")


def load_environment(dotenv_path: Path | None = None) -> dict[str, str]:
    """The process environment over a `.env` file (development convenience)."""
    import os

    from dotenv import dotenv_values

    values = {k: v for k, v in dotenv_values(dotenv_path or Path(".env")).items()
              if v is not None}
    values.update(os.environ)
    return values
