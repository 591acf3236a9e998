-- Try an aborted canary again: take spec.rollout.abort out (a new generation starts it).
obj.spec.rollout.abort = nil
return obj
