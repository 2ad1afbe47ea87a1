"""Settings are read once, validated, and production refuses to start without secrets."""

from __future__ import annotations

import pytest

from csss_fhir.errors import ConfigurationError
from csss_fhir.settings import EndpointAllowlist, PacsDestination, Settings


def test_defaults_match_the_api_contract():
    settings = Settings.from_environ({})
    assert settings.confidence_threshold == 0.75
    assert settings.max_upload_mb == 10
    assert settings.otp_expire_minutes == settings.otp_step_up_minutes == 10
    assert settings.access_token_minutes == 60
    assert settings.cors_origins == ()
    assert settings.mail_backend == "file"


def test_environment_values_are_parsed():
    settings = Settings.from_environ({
        "CONFIDENCE_THRESHOLD": "0.9", "MAX_UPLOAD_MB": "5", "CORS_ORIGINS":
        "https://a.example, https://b.example", "MAIL_BACKEND": "smtp",
        "SMTP_SECURITY": "ssl"})
    assert settings.confidence_threshold == 0.9 and settings.max_upload_mb == 5
    assert settings.cors_origins == ("https://a.example", "https://b.example")


@pytest.mark.parametrize("environ, variable", [
    ({"CSSS_ENV": "production"}, "SECRET_KEY"),
    ({"CSSS_ENV": "production", "SECRET_KEY": "s" * 40}, "JWT_SECRET_KEY"),
    ({"CONFIDENCE_THRESHOLD": "high"}, "CONFIDENCE_THRESHOLD"),
    ({"CONFIDENCE_THRESHOLD": "1.5"}, "CONFIDENCE_THRESHOLD"),
    ({"MAIL_BACKEND": "pigeon"}, "MAIL_BACKEND"),
    ({"STORAGE_BACKEND": "floppy"}, "STORAGE_BACKEND"),
    ({"STORAGE_BACKEND": "s3"}, "S3_BUCKET"),
])
def test_bad_configuration_names_the_variable(environ, variable):
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_environ(environ)


def test_storage_settings_are_parsed():
    settings = Settings.from_environ({
        "STORAGE_BACKEND": "s3", "S3_BUCKET": "scans", "S3_ENDPOINT_URL": "http://minio:9000",
        "S3_REGION": "eu-west-1", "S3_ACCESS_KEY_ID": "key", "S3_SECRET_ACCESS_KEY": "secret",
        "S3_PREFIX": "csss/", "RATELIMIT_STORAGE_URI": "redis://redis:6379/0"})
    assert (settings.storage_backend, settings.s3_bucket, settings.s3_endpoint_url,
            settings.s3_region, settings.s3_prefix) == (
        "s3", "scans", "http://minio:9000", "eu-west-1", "csss/")
    assert (settings.s3_access_key_id, settings.s3_secret_access_key) == ("key", "secret")
    assert settings.ratelimit_storage_uri == "redis://redis:6379/0"
    assert Settings.from_environ({}).storage_backend == "file"


def test_development_secrets_are_generated_once_and_kept(tmp_path):
    first = Settings().with_generated_secrets(tmp_path)
    second = Settings().with_generated_secrets(tmp_path)
    assert first.secret_key and first.jwt_secret_key and first.secret_key != first.jwt_secret_key
    assert (first.secret_key, first.jwt_secret_key) == (second.secret_key, second.jwt_secret_key)
    assert oct((tmp_path / "dev-secrets").stat().st_mode)[-3:] == "600"


def test_production_app_refuses_to_start_without_secrets(tmp_path):
    from csss_fhir import create_app

    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        create_app(Settings(env="production", instance_path=tmp_path))


def test_patient_safety_settings_are_read_and_the_time_zone_is_checked():
    settings = Settings.from_environ({"EMERGENCY_NUMBER": "999",
                                      "HOSPITAL_PHONE": "+44 20 7946 0000",
                                      "HOSPITAL_TIMEZONE": "Europe/London"})
    assert (settings.emergency_number, settings.hospital_phone, settings.hospital_timezone) == (
        "999", "+44 20 7946 0000", "Europe/London")
    assert Settings.from_environ({}).hospital_timezone == "UTC"
    for bad in ("Mars/Olympus_Mons", "CET+1", "../etc/passwd"):
        with pytest.raises(ConfigurationError, match="HOSPITAL_TIMEZONE=.*IANA name"):
            Settings.from_environ({"HOSPITAL_TIMEZONE": bad})


def test_jobs_run_on_a_thread_without_a_broker_and_on_celery_with_one():
    assert Settings.from_environ({}).jobs_runner == "thread"
    settings = Settings.from_environ({
        "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0", "AI_DEADLINE_SECONDS": "60",
        "AI_MAX_ATTEMPTS": "5", "JOBS_SWEEP_SECONDS": "10", "SMTP_TIMEOUT": "2.5",
        "DB_CONNECT_TIMEOUT": "3", "DB_STATEMENT_TIMEOUT_MS": "5000"})
    assert settings.jobs_runner == "celery"
    assert (settings.ai_deadline_seconds, settings.ai_max_attempts) == (60, 5)
    assert (settings.jobs_sweep_seconds, settings.smtp_timeout_seconds) == (10.0, 2.5)
    assert (settings.db_connect_timeout_seconds, settings.db_statement_timeout_ms) == (3, 5000)
    assert Settings.from_environ({"JOBS_MODE": "inline"}).jobs_runner == "inline"


@pytest.mark.parametrize("environ, named", [
    ({"JOBS_MODE": "cron"}, "JOBS_MODE"),
    ({"JOBS_MODE": "celery"}, "CELERY_BROKER_URL"),
    ({"AI_MAX_ATTEMPTS": "0"}, "AI_MAX_ATTEMPTS"),
    ({"SMTP_TIMEOUT": "-1"}, "SMTP_TIMEOUT"),
])
def test_bad_job_settings_name_the_variable(environ, named):
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environ(environ)


def test_production_needs_base_url_and_a_bad_one_is_named(tmp_path):
    secrets = {"CSSS_ENV": "production", "SECRET_KEY": "s" * 40, "JWT_SECRET_KEY": "j" * 40}
    with pytest.raises(ConfigurationError, match="BASE_URL must be set"):
        Settings.from_environ(secrets)
    with pytest.raises(ConfigurationError, match="BASE_URL='csss.example' is not"):
        Settings.from_environ({**secrets, "BASE_URL": "csss.example"})
    assert Settings.from_environ({**secrets, "BASE_URL": "https://csss.example/"}
                                 ).public_root == "https://csss.example"


def test_links_never_follow_the_host_header(client, as_role):
    headers = {**as_role("doctor"), "Host": "evil.example"}
    bundle = client.get("/fhir/ImagingStudy", headers=headers).get_json()
    assert all(link["url"].startswith("http://127.0.0.1:5000/fhir/")
               for link in bundle["link"])
    smart = client.get("/.well-known/smart-configuration", headers={"Host": "evil.example"})
    assert smart.get_json()["token_endpoint"] == "http://127.0.0.1:5000/auth/token"
    created = client.post("/fhir/Patient", headers={
        **headers, "Content-Type": "application/fhir+json"},
        json={"resourceType": "Patient", "name": [{"family": "Host", "given": ["Test"]}]})
    assert created.status_code == 201
    assert created.headers["Location"].startswith("http://127.0.0.1:5000/fhir/Patient/")


def test_dicom_listener_settings_are_read_and_checked():
    settings = Settings.from_environ({"DICOM_AE_TITLE": "CSSS_AI", "DICOM_PORT": "104",
                                      "DICOM_ALLOWED_AE_TITLES": "PACS, CR_ROOM_1,"})
    assert (settings.dicom_ae_title, settings.dicom_port) == ("CSSS_AI", 104)
    assert settings.dicom_allowed_ae_titles == ("PACS", "CR_ROOM_1")
    assert Settings.from_environ({}).dicom_allowed_ae_titles == ()


@pytest.mark.parametrize("environ, named", [
    ({"DICOM_AE_TITLE": "A" * 17}, "DICOM_AE_TITLE"),
    ({"DICOM_ALLOWED_AE_TITLES": "PACS,BAD\\AE"}, "DICOM_ALLOWED_AE_TITLES"),
    ({"DICOM_PORT": "70000"}, "DICOM_PORT"),
    ({"DICOMWEB_MAX_REQUEST_MB": "5"}, "DICOMWEB_MAX_REQUEST_MB"),
])
def test_bad_dicom_settings_name_the_variable(environ, named):
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_environ(environ)


def test_pacs_destination_is_parsed():
    settings = Settings.from_environ({"PACS_DESTINATION": "MAIN_PACS@pacs.example.org:104",
                                      "PACS_MAX_ATTEMPTS": "3"})
    assert settings.pacs_destination == PacsDestination("MAIN_PACS", "pacs.example.org", 104)
    assert settings.pacs_max_attempts == 3
    assert Settings.from_environ({}).pacs_destination is None
    assert PacsDestination.parse("PACS@[::1]:11112").host == "::1"


@pytest.mark.parametrize("value", ["pacs.example.org:104", "PACS@pacs.example.org",
                                   "PACS@:104", "PACS@host:0", "PACS@host:port",
                                   "A_TITLE_THAT_IS_TOO_LONG@host:104", "BAD\\AE@host:104"])
def test_a_bad_pacs_destination_says_what_is_expected(value):
    with pytest.raises(ConfigurationError, match="expected AE@host:port"):
        Settings.from_environ({"PACS_DESTINATION": value})


def test_the_subscription_endpoint_allowlist_is_parsed():
    settings = Settings.from_environ({"SUBSCRIPTION_ENDPOINT_ALLOWLIST":
                                      " EHR.hospital.internal, 10.20.0.0/16,[::1], "
                                      "http://ehr:8080/hooks/ "})
    allowlist = settings.subscription_endpoint_allowlist
    assert allowlist.hosts == {"ehr.hospital.internal"}
    assert [str(n) for n in allowlist.networks] == ["10.20.0.0/16", "::1/128"]
    assert allowlist.names("http://ehr:8080/hooks/a") and allowlist.names("https://[::1]/")
    assert not allowlist.names("http://ehr:8080/other")
    assert Settings.from_environ({}).subscription_endpoint_allowlist == EndpointAllowlist()


@pytest.mark.parametrize("entry", ["ftp://ehr/", "https://user@ehr/", "https://ehr/?a=1",
                                   "ehr hospital", "*.example.org", "10.0.0.0/33"])
def test_a_bad_allowlist_entry_says_what_is_expected(entry):
    with pytest.raises(ConfigurationError, match="SUBSCRIPTION_ENDPOINT_ALLOWLIST"):
        Settings.from_environ({"SUBSCRIPTION_ENDPOINT_ALLOWLIST": entry})
