"""Split models as ordered block lists: the trainable zoo (``zoo``) and the anchor testbed's architectures (``anchors``)."""
