"""Images onto the node: one pull per node however many sockers want an image, the root
puller that does it, the record of what socker pulled, and `socker prune`."""
