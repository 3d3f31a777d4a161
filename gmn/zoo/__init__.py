"""CNN zoos: trained networks of mixed architectures with per-model records. See docs/zoo.md.

Owns the zoo folder (a :mod:`gmn.data.storage` store, the format INR datasets use too), the
architecture specs it stores, the grouped CNN trainer and zoo builder, and the readers of
public CNN zoos and checkpoint folders.
May import: gmn.data, gmn.files, gmn.graph, gmn.models, gmn.seeding.

One module per concept, each importing only those above it:

- ``specs``: architectures as JSON data (``build_architecture``, ``register_architecture``)
- ``stored_template``: a graph template stored as data, for architectures no spec builds
- ``store``: the zoo folder (``ModelZoo``, ``split_models``)
- ``grouped_cnn``: G CNNs of one architecture trained at once as grouped convolutions
- ``build``: sample and train a zoo (``ZooConfig``, ``build_zoo``)
- ``readers``: public CNN zoos and checkpoint folders (``import_checkpoints``, …)
"""

from gmn.zoo.build import ZooConfig, build_zoo
from gmn.zoo.readers import import_checkpoints, read_cnn_wild_park, read_small_cnn_zoo
from gmn.zoo.specs import build_architecture, register_architecture
from gmn.zoo.store import ModelZoo, split_models

__all__ = ["ModelZoo", "ZooConfig", "build_architecture", "build_zoo", "import_checkpoints",
           "read_cnn_wild_park", "read_small_cnn_zoo", "register_architecture", "split_models"]
