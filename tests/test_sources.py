"""fastnst.sources: the image column of a parquet file's schema (the resolution itself: tests/test_data.py)."""

from __future__ import annotations

import json

import pytest

from fastnst.errors import InputError
from fastnst.sources import schema_image_column

pa = pytest.importorskip("pyarrow")
IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])


def test_image_column_by_type_then_by_name():
    hf = {b"huggingface": json.dumps({"info": {"features": {"pic": {"_type": "Image"}}}}).encode()}
    assert schema_image_column(pa.schema([("caption", pa.string()), ("pic", pa.binary())], metadata=hf)) == "pic"
    assert schema_image_column(pa.schema([("a", IMAGE), ("image", IMAGE)])) == "image"
    assert schema_image_column(pa.schema([("label", pa.int64()), ("jpg", pa.binary())])) == "jpg"
    with pytest.raises(InputError, match="no image column"):
        schema_image_column(pa.schema([("label", pa.int64()), ("text", pa.string())]))


def test_a_named_column_is_checked():
    schema = pa.schema([("label", pa.int64()), ("photo_path", pa.string())])
    assert schema_image_column(schema, "photo_path") == "photo_path"
    with pytest.raises(InputError, match="no column 'x'"):
        schema_image_column(schema, "x")
    with pytest.raises(InputError, match="holds int64, not images"):
        schema_image_column(schema, "label")
