import base64
import json
import random

from trainlog.api.bodies import base64_pieces, json_with_base64_data


def test_base64_pieces_join_into_the_base64_of_the_whole() -> None:
    rng = random.Random(7)
    for _ in range(200):
        pages = [rng.randbytes(rng.randrange(0, 20)) for _ in range(rng.randrange(0, 6))]
        joined = b"".join(base64_pieces(pages))
        assert joined == base64.b64encode(b"".join(pages))


def test_json_body_is_valid_json_with_data_last() -> None:
    body = b"".join(json_with_base64_data({"size": 5}, [b"ab", b"\xffde"]))
    assert json.loads(body) == {"size": 5, "data": base64.b64encode(b"ab\xffde").decode()}
