"""Styles that work out of the box. Importing this package is cheap and torch-free.

* :mod:`fastnst.styles.registry`: what a style name means (a built-in style, a painting, a generated
  style or an image file), with did-you-mean; every style argument is looked up there.
* :mod:`fastnst.styles.builtin`: the built-in styles shipped with the package (one multi-style ONNX
  model; each style's name, source, licence and thumbnail), ``fastnst styles`` and its sheet.
* :mod:`fastnst.styles.generated`: style pictures drawn by code (numpy + Pillow), cached at 512 px.
* :mod:`fastnst.styles.paintings`: public-domain paintings, downloaded once into a cache.
"""
