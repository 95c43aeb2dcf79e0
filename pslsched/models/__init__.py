"""Split models as ordered block lists, each kind in a registry: the trainable zoo (``zoo.MODELS``) and the anchor
testbed's architectures for calibration (``anchors.ANCHOR_ARCHITECTURES``, by profile ``anchors.ANCHOR_MODELS``)."""
