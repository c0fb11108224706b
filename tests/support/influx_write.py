"""Writes air-quality points with the official InfluxDB 2.x Python client (influxdb-client),
as a department's script would, to a running ktxh; tests/api/influx.rs reads them back.

Usage: influx_write.py URL TOKEN

Every point is at 2026-01-05T03:00:00Z, one ward per precision, so that the test can tell which
write landed where:

    ward                    precision  how                               aqi
    Trạm Bến Thành, Q.1     s          Point with a datetime, escapes    93
    P_SAI_GON               ms         Point with an int timestamp       71.5
    P_TAN_DINH              us         a line protocol string            55.25
    Thủ Đức                 ns         Point.from_dict                   120
    X_CAN_GIO               s          gzip-compressed request           40

Then it checks that the client understands the service's errors: a rejected point raises
ApiException 400 whose message names the line and the reason, and a bad token a 401.
Exits non-zero (an AssertionError or the client's exception) when anything differs.
"""

import json
import sys
from datetime import datetime, timezone

from influxdb_client import InfluxDBClient, Point, WritePrecision
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.rest import ApiException

ORG = "so-nong-nghiep-moi-truong"
BUCKET = "quan-trac"
AT = datetime(2026, 1, 5, 3, 0, tzinfo=timezone.utc)
AT_S = int(AT.timestamp())


def write_every_precision(url: str, token: str) -> None:
    with InfluxDBClient(url=url, token=token, org=ORG) as client:
        write = client.write_api(write_options=SYNCHRONOUS)

        # The client escapes the space and comma of the tag value and the space and `=` of
        # the tag key; the service maps the station name to its ward.
        escaped = (
            Point("air_quality")
            .tag("ward", "Trạm Bến Thành, Q.1")
            .tag("station id", "a=1, b")
            .field("aqi", 93)
            .field("note", 'quoted "text" \\ here')
            .time(AT, WritePrecision.S)
        )
        write.write(BUCKET, ORG, escaped, write_precision=WritePrecision.S)

        in_ms = Point("air_quality").tag("ward", "P_SAI_GON").field("aqi", 71.5).time(AT_S * 1000, WritePrecision.MS)
        write.write(BUCKET, ORG, in_ms, write_precision=WritePrecision.MS)

        write.write(
            BUCKET,
            ORG,
            f"air_quality,ward=P_TAN_DINH aqi=55.25 {AT_S * 1_000_000}",
            write_precision=WritePrecision.US,
        )

        from_dict = Point.from_dict(
            {
                "measurement": "air_quality",
                "tags": {"ward": "Thủ Đức"},
                "fields": {"aqi": 120},
                "time": AT_S * 1_000_000_000,
            },
            WritePrecision.NS,
        )
        write.write(BUCKET, ORG, from_dict)

        try:
            write.write(
                BUCKET,
                ORG,
                Point("air_quality").tag("ward", "NOWHERE").field("aqi", 50).time(AT, WritePrecision.S),
                write_precision=WritePrecision.S,
            )
        except ApiException as error:
            assert error.status == 400, error
            assert "line 1" in error.message and "unknown unit `NOWHERE`" in error.message, error.message
            body = json.loads(error.body)
            assert body["code"] == "invalid", body
            assert body["rejected"][0]["code"] == "unknown_unit", body
        else:
            raise AssertionError("a point of an unknown unit was accepted")

    with InfluxDBClient(url=url, token=token, org=ORG, enable_gzip=True) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        gzipped = Point("air_quality").tag("ward", "X_CAN_GIO").field("aqi", 40).time(AT, WritePrecision.S)
        write.write(BUCKET, ORG, gzipped, write_precision=WritePrecision.S)

    with InfluxDBClient(url=url, token="ktxh_0000000000000000_" + "0" * 64, org=ORG) as client:
        write = client.write_api(write_options=SYNCHRONOUS)
        try:
            write.write(BUCKET, ORG, "air_quality,ward=P_SAI_GON aqi=1")
        except ApiException as error:
            assert error.status == 401, error
            assert "token" in error.message, error.message
        else:
            raise AssertionError("a write with an unknown token was accepted")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    write_every_precision(sys.argv[1], sys.argv[2])
    print("ok")
