"""Every table of the service, imported once so `Base.metadata` knows them all.

Alembic's env.py and the tests import this module; a new domain's models
module is added here and nowhere else.
"""

from order_service.access import models as access  # noqa: F401
from order_service.accounts import models as accounts  # noqa: F401
from order_service.actions import models as actions  # noqa: F401
from order_service.events import models as events  # noqa: F401
from order_service.orders import models as orders  # noqa: F401
from order_service.plan_changes import models as plan_changes  # noqa: F401
from order_service.provisioning import models as provisioning  # noqa: F401
from order_service.renewals import models as renewals  # noqa: F401
