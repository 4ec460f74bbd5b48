"""A static browser page that stylises photos with onnxruntime-web (``fastnst export --web DIR``), torch-free.

The page itself is ``index.html`` and ``app.js`` in this folder; :mod:`fastnst.web.page` writes it, the
models and onnxruntime-web's browser files into a folder that any static web server can serve.
"""

from __future__ import annotations

from fastnst.web.page import WebPlan, find_ort_dist, model_entry, ort_files, plan_web, site_size, write_web

__all__ = ["find_ort_dist", "model_entry", "ort_files", "plan_web", "site_size", "write_web", "WebPlan"]
