"""Citizen interactions (issue 15): service requests, complaints, enquiries and feedback."""
