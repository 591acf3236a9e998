-- Start one retraining: a new value of spec.retraining.run (the time, as Argo CD's own
-- Deployment restart action stamps it).
if obj.spec.retraining ~= nil then
  obj.spec.retraining.run = os.date("!%Y%m%dT%H%M%SZ")
end
return obj
