"""Alerts (DESIGN section 9 "Fleet"): rules (the Alerts page, or the admin) post to a webhook.

- `evaluate`: each enabled rule, every EDOBS_ALERT_INTERVAL_SECONDS, reads the store through the
  selectors (events.read.selectors.AccountScope: every account, or only its team's) and records an
  `AlertFiring` per job it matches, once per rule and job (the database's unique constraint
  decides, so re-evaluation, duplicate events and several loops never fire twice); a
  failure-rate rule fires once per rule and window period. A rule never fires for jobs that
  ended before it was created or enabled (`AlertRule.enabled_at`), and the jobs it fires for
  are grouped: one post per rule and EDOBS_ALERT_GROUP_SECONDS window, led by its first job's
  firing (the others are recorded as `grouped`).
- `deliver`: posts each due firing's body, records every attempt (`AlertDelivery`) with the
  answer it got, and schedules the next one with exponential backoff until a 2xx answer or
  EDOBS_ALERT_MAX_ATTEMPTS.
- `runner`: the two in separate threads, so a slow webhook never delays evaluation
  (`manage.py run_alerts`, and a thread of `manage.py demo`).
- what is posted is pure: events.domain.alert_payload (the pages make a test-send's body too).
"""
