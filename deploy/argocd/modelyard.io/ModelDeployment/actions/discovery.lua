-- Argo CD resource actions of a ModelDeployment: each one the declarative change a GitOps
-- user could commit instead (kubectl modelyard retrain / promote / abort / retry make the same
-- change).
local actions = {}
local retraining = obj.spec.retraining
actions["retrain"] = {["disabled"] = retraining == nil}

local waiting, running = false, false
local aborted = obj.spec.rollout ~= nil and obj.spec.rollout.abort ~= nil
if obj.status ~= nil then
  local rollout = obj.status.rollout
  if rollout ~= nil and rollout.canary ~= nil and rollout.canary.sha256 ~= nil then
    if rollout.phase == "Paused" then
      waiting = true
    end
    -- Promoting: the stable Deployment already rolls to it; too late to abort.
    if rollout.phase == "Progressing" or rollout.phase == "Paused" then
      running = true
    end
  end
  local state = obj.status.retraining
  if state ~= nil and state.lastDecision ~= nil and state.lastDecision.result == "AwaitingApproval"
    and state.lastDecision.challenger ~= nil and state.lastDecision.challenger.sha256 ~= nil then
    waiting = true
  end
end
actions["promote"] = {["disabled"] = not waiting}
actions["abort"] = {["disabled"] = not running}
actions["retry"] = {["disabled"] = not aborted}
return actions
