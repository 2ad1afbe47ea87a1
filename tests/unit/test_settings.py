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
])
def test_bad_configuration_names_the_variable(environ, variable):
    with pytest.raises(ConfigurationError, match=variable):
        Settings.from_environ(environ)


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
