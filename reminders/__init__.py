"""Scheduled reminders: sweeps over the database that queue what is due (see reminders/sweep.py).

``SWEEPS`` lists them in the order they run; the digest goes last so it gathers what the
others queued in the same pass (the monthly update's reminder just before it).
"""
from reminders import digest, overdue
from reminders import campaigns, inspections
from reminders import duty, duty_check, duty_holiday, duty_spot
from reminders import monthly, prune
from reminders import weekly

SWEEPS = (
    ("overdue", overdue.sweep),
    ("campaigns", campaigns.sweep),
    ("inspections", inspections.sweep),
    ("duty", duty.sweep),
    ("duty_spot", duty_spot.sweep),
    ("duty_holiday", duty_holiday.sweep),
    ("duty_check", duty_check.sweep),
    ("weekly", weekly.sweep),
    ("prune", prune.sweep),
    ("monthly", monthly.sweep),
    ("digest", digest.sweep),
)
