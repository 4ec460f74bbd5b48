"""Styles that work out of the box. Importing this package is cheap and torch-free.

* :mod:`fastnst.styles.builtin`: the built-in styles shipped with the package (one multi-style ONNX
  model; each style's name, source, licence and thumbnail).
* :mod:`fastnst.styles.generated`: style pictures drawn by code (numpy + Pillow).
* :mod:`fastnst.styles.paintings`: a registry of public-domain paintings, downloaded once into a cache.
"""
