"""Importing this module registers every family's connection test (one import per module)."""

# ruff: noqa: F401
import flowcred.connectors.apns
import flowcred.connectors.azure_blob
import flowcred.connectors.bigquery
import flowcred.connectors.elasticsearch
import flowcred.connectors.fcm
import flowcred.connectors.gcs
import flowcred.connectors.kafka
import flowcred.connectors.mongodb
import flowcred.connectors.mssql
import flowcred.connectors.oracle
import flowcred.connectors.sendgrid
import flowcred.connectors.slack
import flowcred.connectors.snowflake
import flowcred.connectors.twilio
import flowcred.connectors.vonage
