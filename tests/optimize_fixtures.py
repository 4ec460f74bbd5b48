"""What the fastnst.optimize tests share: a random loss network and two small synthetic pictures."""

from __future__ import annotations

import pytest

from tests.conftest import synthetic_rgb

RANDOM = {"vgg_weights": "random"}  # the seeded random VGG: no download, same network every time


@pytest.fixture(scope="module")
def content():
    return synthetic_rgb(48, 32, seed=1)


@pytest.fixture(scope="module")
def style():
    return synthetic_rgb(40, 40, seed=5)
