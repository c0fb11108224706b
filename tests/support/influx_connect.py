"""Connects to a running ktxh as InfluxDB tools do before they write, with both official Python
clients; tests/api/influx_query.rs runs it.

Usage: influx_connect.py URL TOKEN

- influxdb-client (the 2.x client): `ping()` is true, `version()` and `build()` read the
  `X-Influxdb-Version` and `X-Influxdb-Build` headers, `health()` passes.
- influxdb (the 1.x client), with the token as the Basic password: `ping()` returns the
  version, `get_list_database()` lists `ktxh`, `get_list_retention_policies()` lists
  `autogen`, `get_list_measurements()` lists the mapped measurements; a SELECT is refused
  with 400 naming it, and a bad password is a 401.
Exits non-zero (an AssertionError or the client's exception) when anything differs.
"""

import json
import sys
import warnings
from urllib.parse import urlsplit

import influxdb
import influxdb_client
from influxdb.exceptions import InfluxDBClientError

ORG = "so-nong-nghiep-moi-truong"


def v2_client(url: str, token: str) -> None:
    with influxdb_client.InfluxDBClient(url=url, token=token, org=ORG) as client:
        assert client.ping() is True
        version = client.version()
        assert version.startswith("ktxh-"), version
        assert client.build() == "OSS", client.build()
        with warnings.catch_warnings():
            # `health()` is deprecated in favour of `ping()`, and still used by older tools.
            warnings.simplefilter("ignore", DeprecationWarning)
            health = client.health()
        assert health.status == "pass", health
        assert health.name == "influxdb", health
        assert health.version == version, health
    # `/ping` is open, as InfluxDB's: an agent with a wrong token still sees the service up.
    with influxdb_client.InfluxDBClient(url=url, token="wrong", org=ORG) as client:
        assert client.ping() is True


def v1_client(url: str, token: str) -> None:
    parts = urlsplit(url)
    client = influxdb.InfluxDBClient(
        host=parts.hostname, port=parts.port, username="so-nnmt", password=token
    )
    try:
        version = client.ping()
        assert version.startswith("ktxh-"), version

        assert client.get_list_database() == [{"name": "ktxh"}], client.get_list_database()

        policies = client.get_list_retention_policies("ktxh")
        assert [p["name"] for p in policies] == ["autogen"], policies
        assert policies[0]["default"] is True and policies[0]["duration"] == "0s", policies

        # SHOW MEASUREMENTS needs a database, as in InfluxDB.
        try:
            client.get_list_measurements()
        except InfluxDBClientError as error:
            assert "database name required" in str(error.content), error.content
        else:
            raise AssertionError("SHOW MEASUREMENTS without a database was answered")
        client.switch_database("quan-trac")
        names = [m["name"] for m in client.get_list_measurements()]
        assert "air_quality" in names and "traffic" in names, names
        assert names == sorted(names), names

        try:
            client.query('SELECT mean("aqi") FROM "air_quality"')
        except InfluxDBClientError as error:
            assert error.code == 400, error
            # The client hands over the body as it came: InfluxDB's `{"error": …}`.
            message = json.loads(error.content)["error"]
            assert 'SELECT mean("aqi") FROM "air_quality"' in message, message
            assert "not supported" in message, message
        else:
            raise AssertionError("a SELECT was answered")
    finally:
        client.close()

    stranger = influxdb.InfluxDBClient(
        host=parts.hostname, port=parts.port, username="x", password="ktxh_0000000000000000_" + "0" * 64
    )
    try:
        stranger.get_list_database()
    except InfluxDBClientError as error:
        assert error.code == 401, error
    else:
        raise AssertionError("SHOW DATABASES with an unknown token was answered")
    finally:
        stranger.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    v2_client(sys.argv[1], sys.argv[2])
    v1_client(sys.argv[1], sys.argv[2])
    print("ok")
