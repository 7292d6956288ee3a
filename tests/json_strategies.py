"""Hypothesis strategies for JSON-shaped values, shared by the property tests."""

from __future__ import annotations

from hypothesis import strategies as st


def json_values(scalars: st.SearchStrategy, max_leaves: int) -> st.SearchStrategy:
    """``scalars``, and small lists and objects of them nested a few levels deep."""
    return st.recursive(
        scalars,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
        ),
        max_leaves=max_leaves,
    )
