"""Typed contents of flowgen ``credentials_path`` files; :mod:`flowcred.files` loads them."""
