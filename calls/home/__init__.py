"""The clinic home page (the console's index for clinic users) and the CSV export of calls and escalations."""
