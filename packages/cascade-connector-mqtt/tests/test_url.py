"""`MqttConnector.from_url`: every option, the defaults, and clear errors that never show the password."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cascade.connectors.mqtt import InvalidUrlError, MqttConnector
from cascade.connectors.mqtt._url import redact_url
from cascade.connectors.mqtt.mosquitto import TlsFiles
from cascade.connectors.protocol import ConnectorError

SECRET = "s3cr3t-Pa55"


def test_plain_url_defaults() -> None:
    connector = MqttConnector.from_url("mqtt://broker.example")
    assert connector.settings.hostname == "broker.example"
    assert connector.settings.port == 1883
    assert connector.settings.tls is None
    assert connector.settings.username is None


def test_every_query_option_is_applied() -> None:
    connector = MqttConnector.from_url(
        f"mqtt://alice:{SECRET}@10.0.0.5:1884/?client_id=worker-7&source=etl-1&keepalive=15"
        "&max_buffered=50&reconnect_min_delay=0.5&reconnect_max_delay=4&connect_timeout=2.5&flush_timeout=0"
    )
    assert (connector.settings.hostname, connector.settings.port) == ("10.0.0.5", 1884)
    assert (connector.settings.username, connector.settings.password) == ("alice", SECRET)
    assert connector.client_id == "worker-7"
    assert connector.source == "etl-1"
    assert connector.settings.keepalive == 15
    assert connector.settings.max_buffered == 50
    assert (connector.settings.reconnect_min_delay, connector.settings.reconnect_max_delay) == (0.5, 4.0)
    assert connector.settings.connect_timeout == 2.5
    assert connector.settings.flush_timeout == 0.0


def test_credentials_are_percent_decoded() -> None:
    connector = MqttConnector.from_url("mqtt://us%40er:p%3Ass%2Fw%40rd@localhost")
    assert connector.settings.username == "us@er"
    assert connector.settings.password == "p:ss/w@rd"


def test_ipv6_host() -> None:
    connector = MqttConnector.from_url("mqtt://[::1]:1999")
    assert (connector.settings.hostname, connector.settings.port) == ("::1", 1999)


def test_mqtts_verifies_certificates_with_the_system_cas_by_default() -> None:
    connector = MqttConnector.from_url("mqtts://broker.example")
    assert connector.settings.port == 8883
    assert isinstance(connector.settings.tls, ssl.SSLContext)
    assert connector.settings.tls.verify_mode == ssl.CERT_REQUIRED
    assert connector.settings.tls.check_hostname


def test_mqtts_ca_file(tls_files: TlsFiles) -> None:
    connector = MqttConnector.from_url(f"mqtts://localhost:9999/?ca_file={tls_files.ca_file}")
    assert isinstance(connector.settings.tls, ssl.SSLContext)
    names = [cert["subject"] for cert in connector.settings.tls.get_ca_certs()]
    assert ((("commonName", "Cascade Test CA"),),) in names


def test_mqtts_client_certificate(tls_files: TlsFiles) -> None:
    url = f"mqtts://localhost/?ca_file={tls_files.ca_file}&cert_file={tls_files.cert_file}&key_file={tls_files.key_file}"
    assert isinstance(MqttConnector.from_url(url).settings.tls, ssl.SSLContext)


def test_keyword_overrides_win_over_the_url() -> None:
    context = ssl.create_default_context()
    connector = MqttConnector.from_url("mqtt://localhost/?source=a", source="b", tls=context)
    assert connector.source == "b"
    assert connector.settings.tls is context


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://localhost", "the scheme must be mqtt:// or mqtts://, not 'http'"),
        ("localhost:1883", "the scheme must be mqtt:// or mqtts://"),
        ("mqtt://", "no host name"),
        (f"mqtt://bob:{SECRET}@:1883", "no host name"),
        ("mqtt://localhost:notaport", "the port must be a number between 1 and 65535"),
        ("mqtt://localhost:70000", "the port must be a number between 1 and 65535"),
        ("mqtt://localhost:0", "the port must be a number between 1 and 65535"),
        ("mqtt://localhost/some/path", "unexpected path '/some/path'"),
        ("mqtt://localhost/#frag", "unexpected '#fragment'"),
        ("mqtt://localhost/?keepalive=soon", "option 'keepalive': 'soon' is not a whole number"),
        ("mqtt://localhost/?keepalive=-5", "option 'keepalive': '-5' is not a whole number"),
        ("mqtt://localhost/?keepalive=70000", "keepalive must be between 0 and 65535, not 70000"),
        ("mqtt://localhost/?max_buffered=0", "max_buffered must be at least 1, not 0"),
        ("mqtt://localhost/?connect_timeout=nan", "option 'connect_timeout': 'nan' is not a number"),
        ("mqtt://localhost/?connect_timeout=0", "connect_timeout must be more than 0"),
        (
            "mqtt://localhost/?reconnect_min_delay=2&reconnect_max_delay=1",
            "reconnect_max_delay (1) must be at least reconnect_min_delay (2)",
        ),
        ("mqtt://localhost/?source=a/b", "invalid source 'a/b': must not contain '/'"),
        ("mqtt://localhost/?colour=blue", "unknown option 'colour' (known: ca_file, cert_file, client_id"),
        ("mqtt://localhost/?keepalive=5&keepalive=6", "option 'keepalive' is given twice"),
        ("mqtt://localhost/?client_id=", "option 'client_id' has no value"),
        ("mqtt://localhost/?ca_file=/tmp/ca.pem", "option 'ca_file' needs an mqtts:// URL"),
        ("mqtts://localhost/?key_file=/tmp/k.pem", "option 'key_file' needs 'cert_file'"),
        (
            "mqtts://localhost/?ca_file=/nonexistent/ca.pem",
            "option 'ca_file': cannot load '/nonexistent/ca.pem'",
        ),
        (f"mqtt://:{SECRET}@localhost", "a password needs a user name"),
        ("mqtt://[::1", "cannot be parsed"),
    ],
)
def test_bad_urls_raise_a_clear_error(url: str, problem: str) -> None:
    with pytest.raises(InvalidUrlError) as caught:
        MqttConnector.from_url(url)
    error = caught.value
    assert isinstance(error, ValueError)
    assert isinstance(error, ConnectorError)
    assert problem in str(error)
    assert problem in error.problem


@pytest.mark.parametrize(
    "url",
    [
        f"ftp://alice:{SECRET}@localhost",
        f"mqtt://alice:{SECRET}@localhost:99999",
        f"mqtt://alice:{SECRET}@localhost/?colour=red",
        f"mqtt://alice:{SECRET}@localhost/?keepalive=x",
        f"mqtt://alice:{SECRET}@localhost/?source=a+b/c",
        f"mqtts://alice:{SECRET}@localhost/?ca_file=/nonexistent",
        f"mqtt://alice:{SECRET}@[::1",
        f"mqtt://alice:{SECRET}@localhost/path",
    ],
)
def test_errors_never_show_the_password(url: str) -> None:
    with pytest.raises(InvalidUrlError) as caught:
        MqttConnector.from_url(url)
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)
    assert SECRET not in caught.value.url
    assert "alice:***@" in caught.value.url
    cause: BaseException | None = caught.value.__cause__
    while cause is not None:  # the chained library errors too
        assert SECRET not in str(cause)
        cause = cause.__cause__


def test_not_a_string() -> None:
    with pytest.raises(InvalidUrlError, match="must be a str, not int"):
        MqttConnector.from_url(1883)  # type: ignore[arg-type]


def test_repr_never_shows_the_password(tmp_path: Path) -> None:
    connector = MqttConnector.from_url(f"mqtt://alice:{SECRET}@localhost")
    assert SECRET not in repr(connector)
    assert "alice" in repr(connector)
    assert SECRET not in repr(connector.settings)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"mqtt://alice:{SECRET}@host:1", "mqtt://alice:***@host:1"),
        ("mqtt://alice:pa#ss@host", "mqtt://alice:***@host"),
        ("mqtt://alice:pa?s/s@host/?x=1", "mqtt://alice:***@host/?x=1"),
        ("alice:pw@host", "alice:***@host"),
        ("mqtt://host:1883/?source=a", "mqtt://host:1883/?source=a"),
        ("mqtt://alice@host", "mqtt://alice@host"),
    ],
)
def test_redaction(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_raw_hash_in_password_is_not_shown() -> None:
    with pytest.raises(InvalidUrlError) as caught:
        MqttConnector.from_url("mqtt://alice:pa#ss@host")
    assert "pa#ss" not in str(caught.value)
    assert "ss@host" not in str(caught.value)
