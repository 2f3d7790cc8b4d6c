"""The token URL service for Identity Cloud (Janrain) Social Login: one AWS Lambda function."""
