"""The shared bottom layer every app builds on: domain errors, API and task plumbing, registries, probes.

It imports no app of the product; `contractor_site` (settings, URLconfs, WSGI, Celery) sits on top of all.
"""
