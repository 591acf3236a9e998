-- Stop the canary that is running: spec.rollout.abort names its model's sha256, so the
-- operator rolls it back (reason Aborted) and does not start it again while it is set.
obj.spec.rollout.abort = obj.status.rollout.canary.sha256
return obj
