"""Shared test set-up: a clean Keras session and fixed seeds for every test."""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _clean_keras_session():
    from tfopt._keras import keras
    import tensorflow as tf
    keras.backend.clear_session()
    keras.utils.set_random_seed(0)
    yield
    keras.backend.clear_session()
    del tf
