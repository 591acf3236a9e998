-- Argo CD health of a TrainingJob (Lua 5.1, as Argo CD runs it).
-- A finished training is a record: Succeeded is Healthy, Failed (a gate not met, a crash, an
-- invalid spec) is Degraded, a suspended one Suspended. A status older than the spec (a new
-- generation trains again) or none yet is Progressing.
local hs = {}

if obj.metadata.deletionTimestamp ~= nil then
  hs.status = "Progressing"
  hs.message = "Deleting"
  return hs
end
local generation = obj.metadata.generation or 1
if obj.status == nil or obj.status.observedGeneration == nil or obj.status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile"
  return hs
end
if obj.status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to reconcile generation " .. generation
  return hs
end
local phase = obj.status.phase
local failure = obj.status.lastFailure
if phase == "Succeeded" then
  hs.status = "Healthy"
  if obj.status.model ~= nil then
    hs.message = "Trained " .. obj.status.model.version
  else
    hs.message = "Succeeded"
  end
elseif phase == "Failed" then
  hs.status = "Degraded"
  if failure ~= nil then
    hs.message = failure.reason .. ": " .. (failure.message or "")
  else
    hs.message = "Failed"
  end
elseif phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = "Suspended"
else
  hs.status = "Progressing"
  hs.message = phase
  if failure ~= nil then
    hs.message = phase .. ": " .. failure.reason .. ": " .. (failure.message or "")
  end
end
return hs
