"""Importing this module registers every family's connection test (one import per module)."""

# ruff: noqa: F401
import flowcred.connectors.apns
import flowcred.connectors.fcm
import flowcred.connectors.sendgrid
import flowcred.connectors.slack
import flowcred.connectors.twilio
import flowcred.connectors.vonage
