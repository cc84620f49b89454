"""Mock of catalog-service (plans, images, coupon validation) for tests and demos.

Run it with ``python -m mocks.catalog_service``; sample ids live in
:mod:`mocks.catalog_service.data`.
"""

from mocks.catalog_service.app import create_app

__all__ = ["create_app"]
