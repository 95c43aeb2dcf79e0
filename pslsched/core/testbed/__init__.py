"""testbed.yaml -> Instance (+ Workload): devices, links, model profile and cut points, validated with pydantic.

One module per job: ``schema`` (the sections), ``rates`` (fixed or drawn link rates and latencies, a registry),
``members`` (groups -> members, drawn rates, ``scale_clients``), ``topology`` (routing), ``build`` (the numbers),
``reading`` (files and mappings). This package's names are the public API.
"""

from pslsched.core.testbed.build import Built, build, build_instance
from pslsched.core.testbed.members import scale_clients
from pslsched.core.testbed.rates import RATE_DISTRIBUTIONS, Rate, RateDistribution, parse_rate
from pslsched.core.testbed.reading import default_testbed_path, load_testbed, parse_testbed, read_yaml
from pslsched.core.testbed.schema import (
    ClientGroup,
    CompressionSection,
    Cut,
    HelperGroup,
    Link,
    Model,
    Testbed,
    Topology,
)
from pslsched.core.testbed.topology import ROUTE_REFERENCE_BYTES

__all__ = [
    "RATE_DISTRIBUTIONS",
    "ROUTE_REFERENCE_BYTES",
    "Built",
    "ClientGroup",
    "CompressionSection",
    "Cut",
    "HelperGroup",
    "Link",
    "Model",
    "Rate",
    "RateDistribution",
    "Testbed",
    "Topology",
    "build",
    "build_instance",
    "default_testbed_path",
    "load_testbed",
    "parse_rate",
    "parse_testbed",
    "read_yaml",
    "scale_clients",
]
