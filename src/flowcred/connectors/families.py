"""Importing this module registers every family's connection test (one import per module)."""

# ruff: noqa: F401
import flowcred.connectors.amqp
import flowcred.connectors.ftp
import flowcred.connectors.http
import flowcred.connectors.mqtt
import flowcred.connectors.mysql
import flowcred.connectors.nats
import flowcred.connectors.postgres
import flowcred.connectors.redis
import flowcred.connectors.s3
import flowcred.connectors.sftp
import flowcred.connectors.smtp
