"""Importing this module registers every family's connection test (one import per module)."""

# ruff: noqa: F401
import flowcred.connectors.amqp
import flowcred.connectors.apns
import flowcred.connectors.azure_blob
import flowcred.connectors.bigquery
import flowcred.connectors.elasticsearch
import flowcred.connectors.fcm
import flowcred.connectors.ftp
import flowcred.connectors.gcs
import flowcred.connectors.http
import flowcred.connectors.kafka
import flowcred.connectors.mongodb
import flowcred.connectors.mqtt
import flowcred.connectors.mssql
import flowcred.connectors.mysql
import flowcred.connectors.nats
import flowcred.connectors.oracle
import flowcred.connectors.postgres
import flowcred.connectors.redis
import flowcred.connectors.s3
import flowcred.connectors.sendgrid
import flowcred.connectors.sftp
import flowcred.connectors.slack
import flowcred.connectors.smtp
import flowcred.connectors.snowflake
import flowcred.connectors.twilio
import flowcred.connectors.vonage
