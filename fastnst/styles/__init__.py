"""Styles that work out of the box: built-in trained models, code-generated style pictures
(:mod:`fastnst.styles.generated`) and a registry of public-domain paintings
(:mod:`fastnst.styles.paintings`). Importing this package is cheap and torch-free."""
