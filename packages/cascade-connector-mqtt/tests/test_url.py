"""`MqttConnector.from_url`: every option, the defaults, and clear errors that never show the password."""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
from cascade.connectors.mqtt import InvalidUrlError, MqttConnector
from cascade.connectors.mqtt._url import parse_url, redact_url
from cascade.connectors.mqtt.mosquitto import MosquittoServer, TlsFiles
from cascade.connectors.protocol import ConnectionFailedError, ConnectorError
from hypothesis import event, given, settings
from hypothesis import strategies as st

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


# --- a password holding any character never leaks (issue: a raw '/' made urllib's port error show it) ---

ISSUE_URL = "mqtt://svc:Tr0ub4dor/XkcdPw@host:1883"


def chain_texts(error: BaseException) -> list[str]:
    """str, repr and args of `error` and of every exception chained to it (cause and context)."""
    texts: list[str] = []
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current), *map(repr, current.args)]
        if isinstance(current, InvalidUrlError):
            texts += [current.url, current.problem]
        stack += [current.__cause__, current.__context__]
    return texts


def assert_never_shown(secret: str, texts: list[str]) -> None:
    """No 4 characters in a row of `secret` (all of it, if shorter) appear in any of `texts`."""
    size = min(4, len(secret))
    for i in range(len(secret) - size + 1):
        piece = secret[i : i + size]
        for text in texts:
            assert piece not in text, f"{piece!r} of the password shown in {text!r}"


def test_the_issue_url_says_to_percent_encode_and_shows_nothing_of_the_password() -> None:
    with pytest.raises(InvalidUrlError) as caught:
        MqttConnector.from_url(ISSUE_URL)
    error = caught.value
    assert error.url == "mqtt://svc:***@host:1883"
    assert "%2F for /" in error.problem
    assert "percent-encode" in error.problem
    assert error.__cause__ is None
    assert error.__context__ is None
    assert_never_shown("Tr0ub4dor/XkcdPw", chain_texts(error))
    for part in ("Tr0ub4dor", "XkcdPw"):
        assert all(part not in text for text in chain_texts(error))
    # Encoded, the same password works.
    connector = MqttConnector.from_url("mqtt://svc:Tr0ub4dor%2FXkcdPw@host:1883")
    assert connector.settings.password == "Tr0ub4dor/XkcdPw"


@pytest.mark.parametrize(
    ("password", "said"),
    [
        ("123/Zebra9Quux7", "%2F for /"),  # '/' after digits: urllib would read a port and a path
        ("0/?source=Zebra9", "%3F for ?"),
        ("Zebra?Quux7", "%3F for ?"),
        ("?source=Zebra9Quux7", "%3F for ?"),  # would read as an empty port and a valid option
        ("Zebra#Quux7", "%23 for #"),
        ("Zebra[Quux7", "%5B %5D"),
        ("[Zebra9Quux7]", "%5B %5D"),
        ("100%Zebra9Quux7", "%25 for %"),
        ("Zebra%zzQuux7", "%25 for %"),
        ("Zebra%FFQuux7", "not UTF-8"),  # decodes to bytes that are not text
        ("Zebra\uff20Quux7", "percent-encode"),  # NFKC makes U+FF20 an '@': urllib's error quotes the netloc
        ("Zebra\uff0fQuux7", "percent-encode"),  # a fullwidth '/'
        ("Zebra\tQuux7", "control character"),  # urllib would silently drop the tab
        ("Zebra\nQuux7", "control character"),
    ],
)
def test_a_password_with_raw_special_characters_is_refused_without_showing_it(
    password: str, said: str
) -> None:
    for url in (f"mqtt://svc:{password}@host:1883", f"mqtts://svc:{password}@host/?keepalive=5"):
        with pytest.raises(InvalidUrlError) as caught:
            MqttConnector.from_url(url)
        assert said in caught.value.problem
        assert caught.value.url.startswith(("mqtt://svc:***@host", "mqtts://svc:***@host"))
        assert_never_shown(password, chain_texts(caught.value))


@pytest.mark.parametrize(
    "password", ["p@ss", "p:ss", "a b c", "ümlaut€", "秘密のパスワード", "p@ss:w@rd", "semi;colon=&!$'()*+,"]
)
def test_raw_characters_that_cannot_be_misread_are_kept_as_they_are(password: str) -> None:
    connector = MqttConnector.from_url(f"mqtt://svc:{password}@host:1883")
    assert (connector.settings.hostname, connector.settings.port) == ("host", 1883)
    assert (connector.settings.username, connector.settings.password) == ("svc", password)


def test_an_at_sign_in_an_option_value_must_be_encoded() -> None:
    """An '@' after the host could be the end of a password holding '/', '?' or '#': refused, with a hint."""
    with pytest.raises(InvalidUrlError, match="write %40"):
        MqttConnector.from_url("mqtt://host/?client_id=worker@site")
    assert MqttConnector.from_url("mqtt://host/?client_id=worker%40site").client_id == "worker@site"


def test_the_connector_and_its_settings_never_show_an_odd_password(caplog: pytest.LogCaptureFixture) -> None:
    password = "Tr0ub4dor/Xk#cd?Pw@1 :%[]"
    caplog.set_level(logging.DEBUG)
    connector = MqttConnector.from_url(f"mqtt://svc:{quote(password, safe='')}@host:1883")
    assert connector.settings.password == password
    texts = [repr(connector), str(connector), repr(connector.settings), *caplog.messages]
    assert "svc" in repr(connector)
    assert_never_shown(password, texts)


# Every 4 characters in a row of these passwords hold a marker that no error message contains, so "no
# marker anywhere in the error chain" proves that no part of the password is shown, whatever it holds.
MARKERS = "~!$^|`"
# URL delimiters, and fullwidth @ / ? # : % [ ] (NFKC turns them into the ASCII ones). Lists, not
# st.text: st.text would merge them into one alphabet, and they would almost never be drawn.
delimiters = st.sampled_from(list("/#?@:%[] ") + list("\uff20\uff0f\uff1f\uff03\uff1a\uff05\uff3b\uff3d"))
odd_character = delimiters | st.characters(categories=["L", "N", "P", "S", "Zs"])
raw_passwords = st.lists(
    st.tuples(st.sampled_from(MARKERS), st.lists(odd_character, max_size=3).map("".join)).map("".join),
    min_size=1,
    max_size=6,
).map("".join)
printable_text = st.lists(odd_character | st.sampled_from(MARKERS), max_size=16).map("".join)
printable_names = st.lists(odd_character | st.sampled_from(MARKERS), min_size=1, max_size=16).map("".join)
URL_PROPERTIES = settings(max_examples=300, deadline=None, derandomize=True)


@URL_PROPERTIES
@given(user=printable_names, password=printable_text)
def test_a_percent_encoded_user_and_password_parse_to_exactly_themselves(user: str, password: str) -> None:
    url = f"mqtt://{quote(user, safe='')}:{quote(password, safe='')}@host:1883/?keepalive=30"
    options = parse_url(url)
    assert (options["hostname"], options["port"], options["keepalive"]) == ("host", 1883, 30)
    assert (options["username"], options["password"]) == (user, password)
    assert redact_url(url) == f"mqtt://{quote(user, safe='')}:***@host:1883/?keepalive=30"


@URL_PROPERTIES
@given(password=raw_passwords)
def test_a_raw_password_parses_exactly_or_is_refused_without_any_part_shown(password: str) -> None:
    url = f"mqtt://svc:{password}@host:1883/?keepalive=30"
    refused: InvalidUrlError | None = None
    try:
        connector = MqttConnector.from_url(url)
    except InvalidUrlError as error:
        refused = error
    event("refused" if refused is not None else "parsed")
    if refused is not None:
        assert "percent-encode" in refused.problem
        texts = chain_texts(refused)
        assert not [text for text in texts if any(marker in text for marker in MARKERS)], texts
        assert_never_shown(password, texts)
    else:
        # Nothing was misread: the host, port and options are the URL's, the password is the text given
        # (percent-decoded, so exactly `password` when it holds no '%').
        settings = connector.settings
        assert (settings.hostname, settings.port, settings.keepalive) == ("host", 1883, 30)
        assert connector.settings.username == "svc"
        assert connector.settings.password == unquote(password)
        assert_never_shown(password, [repr(connector), repr(connector.settings)])


@pytest.mark.asyncio
@pytest.mark.mosquitto
async def test_a_percent_encoded_password_logs_in_to_mosquitto_and_a_wrong_one_shows_nothing(
    mosquitto_factory: Callable[..., MosquittoServer], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    server = mosquitto_factory(users={"svc": "Tr0ub4dor/Xk#cd?Pw@1 :%[]"})
    host, port = server.host, server.port
    # --8<-- [start:url-password]
    from urllib.parse import quote

    from cascade.connectors.mqtt import MqttConnector

    password = "Tr0ub4dor/Xk#cd?Pw@1 :%[]"  # from your secret store, not from source code
    url = f"mqtt://svc:{quote(password, safe='')}@{host}:{port}"
    # mqtt://svc:Tr0ub4dor%2FXk%23cd%3FPw%401%20%3A%25%5B%5D@...
    async with MqttConnector.from_url(url) as connector:
        await connector.publish("plant/line-1/ready", {"ok": True}, qos=1)
    # --8<-- [end:url-password]
    wrong = "Tr0ub4dor/Xk#cd?Pw@2 :%[]"
    with pytest.raises(ConnectionFailedError) as caught:
        await MqttConnector.from_url(f"mqtt://svc:{quote(wrong, safe='')}@{host}:{port}").connect()
    assert caught.value.reason == "auth"
    texts = chain_texts(caught.value) + [record.getMessage() for record in caplog.records]
    for secret in (password, wrong, quote(password, safe=""), quote(wrong, safe="")):
        assert_never_shown(secret, texts)


def test_a_host_list_and_the_protocol_option() -> None:
    connector = MqttConnector.from_url("mqtt://u:p%40ss@h1:1884,h2,[::1]:1886?protocol=3.1.1&sync_topic=s/t")
    settings = connector.settings
    assert settings.addresses == (("h1", 1884), ("h2", 1883), ("::1", 1886))
    assert (settings.username, settings.password) == ("u", "p@ss")
    assert (settings.protocol, settings.sync_topic) == ("3.1.1", "s/t")
    for bad, problem in [
        ("mqtt://h1,,h2", "an empty entry in the host list"),
        ("mqtt://h1,h2:x", "port"),
        ("mqtt://h1?protocol=4", "protocol must be one of"),
    ]:
        with pytest.raises(InvalidUrlError, match=problem):
            MqttConnector.from_url(bad)
