"""Posts data value sets with dhis2-client (the HISP Centre's Python client of the DHIS2 Web
API), as a department's script would, to a running ktxh; tests/api/dhis2.rs reads them back.

Usage: dhis2_post.py URL TOKEN VIEWER_TOKEN

1. a value for 2026-01 at Bến Thành: imported 1;
2. a different value for the same period: updated 1;
3. that value again: ignored 1;
4. a set with one value refused: the client returns (200, status WARNING), with the conflict;
5. a viewer token: the client raises DHIS2HTTPError 403 with DHIS2's message.

Exits non-zero (an AssertionError or the client's exception) when anything differs.
"""

import sys

from dhis2_client import DHIS2Client
from dhis2_client.errors import DHIS2HTTPError

EHR = "omnd7tBJRKP"  # config/feeds.toml: EHR_COVERAGE
BEN_THANH = "xsMl4TaOBMv"  # P_BEN_THANH


def one_value(value: str) -> dict:
    return {
        "period": "202601",
        "orgUnit": BEN_THANH,
        "dataValues": [{"dataElement": EHR, "value": value}],
    }


def counts(summary: dict) -> dict:
    assert summary["httpStatusCode"] == 200, summary
    assert summary["response"]["responseType"] == "ImportSummary", summary
    return summary["response"]["importCount"]


def post_every_kind(url: str, token: str, viewer: str) -> None:
    client = DHIS2Client(url, token=token, retries=0)
    try:
        first = client.post_data_value_set(one_value("80.5"))
        assert counts(first) == {"imported": 1, "updated": 0, "ignored": 0, "deleted": 0}, first
        assert first["status"] == "OK", first

        changed = client.post_data_value_set(one_value("81.25"))
        assert counts(changed) == {"imported": 0, "updated": 1, "ignored": 0, "deleted": 0}, changed

        same = client.post_data_value_set(one_value("81.25"))
        assert counts(same) == {"imported": 0, "updated": 0, "ignored": 1, "deleted": 0}, same

        mixed = client.post_data_value_set(
            {
                "orgUnit": BEN_THANH,
                "dataValues": [
                    {"dataElement": EHR, "period": "202602", "value": "82"},
                    {"dataElement": "zzzzzzzzzzz", "period": "202602", "value": "1"},
                ],
            }
        )
        assert mixed["status"] == "WARNING", mixed
        assert mixed["response"]["status"] == "WARNING", mixed
        assert counts(mixed) == {"imported": 1, "updated": 0, "ignored": 1, "deleted": 0}, mixed
        conflict = mixed["response"]["conflicts"][0]
        assert conflict["object"] == "zzzzzzzzzzz" and conflict["errorCode"] == "E7610", mixed
        assert mixed["response"]["rejectedIndexes"] == [1], mixed
    finally:
        client.close()

    reader = DHIS2Client(url, token=viewer, retries=0)
    try:
        reader.post_data_value_set(one_value("1"))
    except DHIS2HTTPError as error:
        assert error.status_code == 403, error
        assert error.payload["httpStatus"] == "Forbidden", error.payload
        assert error.payload["status"] == "ERROR", error.payload
        assert "may not write" in str(error), str(error)
    else:
        raise AssertionError("a viewer token wrote data values")
    finally:
        reader.close()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    post_every_kind(sys.argv[1], sys.argv[2], sys.argv[3])
    print("ok")
