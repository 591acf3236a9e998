"""``modelyard-serve``: the Open Inference Protocol V2 server for one stored model."""
