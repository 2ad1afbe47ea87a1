"""Settings are read once, validated, and production refuses to start without secrets."""

from __future__ import annotations

import pytest

from csss_fhir.errors import ConfigurationError
from csss_fhir.settings import Settings


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
