-- Approve what waits: a paused canary (spec.rollout.approve) or a challenger awaiting
-- approval (spec.retraining.promotion.approve), by its model's sha256.
local status = obj.status or {}
local rollout = status.rollout
if rollout ~= nil and rollout.phase == "Paused" and rollout.canary ~= nil and rollout.canary.sha256 ~= nil then
  obj.spec.rollout.approve = rollout.canary.sha256
  return obj
end
local state = status.retraining
if state ~= nil and state.lastDecision ~= nil and state.lastDecision.result == "AwaitingApproval" then
  if obj.spec.retraining.promotion == nil then
    obj.spec.retraining.promotion = {}
  end
  obj.spec.retraining.promotion.approve = state.lastDecision.challenger.sha256
end
return obj
