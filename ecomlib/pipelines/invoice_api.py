"""Pipeline 4, the visualization API: GET -> Lambda (invoice_api) -> DynamoDB.

``GET /invoices?InvoiceNo=…`` answers an invoice with its lines and total;
``GET /customers/{CustomerID}`` a customer's invoices. Both on the course's REST API,
beside ``POST /invoices`` (ingestion).
"""

from __future__ import annotations

from ecomlib import deploy as dp, registry
from ecomlib.pipelines import dynamodb, ingest

PIPELINE = registry.get("invoice_api")
FUNCTION = "invoice_api"


def policy(table_arns: list[str]) -> list[dict]:
    """Read the two tables with Query: nothing else, nowhere else."""
    return [{"Sid": "QueryTheServingTables", "Effect": "Allow", "Action": ["dynamodb:Query"],
             "Resource": table_arns}]


def deploy() -> str:
    """Create role and function, add the GET routes, deploy the stage; returns its base URL."""
    table_arns = dynamodb.ensure_tables()
    role = dp.ensure_role(FUNCTION, policy(table_arns))
    env = {"INVOICES_TABLE": dynamodb.invoices_table(), "CUSTOMERS_TABLE": dynamodb.customers_table()}
    dp.deploy_function(FUNCTION, role, env)
    api_id = dp.ensure_rest_api(ingest.api_name())
    dp.add_lambda_route(api_id, "/invoices", "GET", FUNCTION)
    dp.add_lambda_route(api_id, "/customers/{CustomerID}", "GET", FUNCTION)
    # Any other method on /customers/... reaches the function too, which answers 405.
    dp.add_lambda_route(api_id, "/customers/{CustomerID}", "ANY", FUNCTION)
    return dp.deploy_stage(api_id, ingest.STAGE)


def teardown() -> None:
    """Remove the GET routes, the function and its role (the API belongs to ingestion)."""
    api_id = dp.find_rest_api(ingest.api_name())
    if api_id:
        dp.remove_route(api_id, "/invoices", "GET")
        dp.remove_route(api_id, "/customers/{CustomerID}", "GET")
        dp.remove_route(api_id, "/customers/{CustomerID}", "ANY")
        dp.deploy_stage(api_id, ingest.STAGE)
    dp.delete_function(FUNCTION)
