-- Argo CD resource actions of a ModelDeployment: each one the declarative change a GitOps
-- user could commit instead (kubectl modelyard retrain / promote make the same change).
local actions = {}
local retraining = obj.spec.retraining
actions["retrain"] = {["disabled"] = retraining == nil}

local waiting = false
if obj.status ~= nil then
  local rollout = obj.status.rollout
  if rollout ~= nil and rollout.phase == "Paused" and rollout.canary ~= nil and rollout.canary.sha256 ~= nil then
    waiting = true
  end
  local state = obj.status.retraining
  if state ~= nil and state.lastDecision ~= nil and state.lastDecision.result == "AwaitingApproval"
    and state.lastDecision.challenger ~= nil and state.lastDecision.challenger.sha256 ~= nil then
    waiting = true
  end
end
actions["promote"] = {["disabled"] = not waiting}
return actions
