"""Runs the real simple-salesforce client, unmodified, against the cairn simulator.

    python3 simple_salesforce_check.py INSTANCE_URL ACCESS_TOKEN

simple-salesforce always builds https:// URLs; the simulator serves plain HTTP on 127.0.0.1, so
the only adaptation is a requests.Session that sends those URLs over http (the reference's
"session adapter"). Every check prints one line; any failure exits non-zero.
"""

import csv
import datetime
import io
import sys
from urllib.parse import urlparse

import requests
from simple_salesforce import Salesforce


class PlainHttpToLocalhost(requests.Session):
    def __init__(self, host):
        super().__init__()
        self.host = host

    def request(self, method, url, *args, **kwargs):
        url = url.replace(f"https://{self.host}", f"http://{self.host}", 1)
        return super().request(method, url, *args, **kwargs)


def check(name, condition, detail=""):
    if not condition:
        print(f"FAIL {name} {detail}")
        sys.exit(1)
    print(f"ok   {name} {detail}")


def main():
    instance_url, token = sys.argv[1], sys.argv[2]
    host = urlparse(instance_url).netloc
    sf = Salesforce(
        instance_url=f"https://{host}",
        session_id=token,
        version="62.0",
        session=PlainHttpToLocalhost(host),
    )

    limits = sf.limits()
    check("limits", limits["DailyApiRequests"]["Max"] > 0, str(limits["DailyApiRequests"]))
    check("Sforce-Limit-Info parsed by the client", sf.api_usage.get("api-usage") is not None, str(sf.api_usage))

    described = sf.describe()
    names = {o["name"] for o in described["sobjects"]}
    check("describeGlobal", {"Account", "Contact", "Invoice__c"} <= names, f"{len(names)} objects")
    account = sf.Account.describe()
    fields = {f["name"]: f for f in account["fields"]}
    check("describe Account", fields["BillingAddress"]["type"] == "address", f"{len(fields)} fields")

    count = sf.query("SELECT COUNT() FROM Contact")["totalSize"]
    contacts = sf.query_all("SELECT Id, Name, Account.Name, SystemModstamp FROM Contact")
    ids = {r["Id"] for r in contacts["records"]}
    check("query_all follows nextRecordsUrl", contacts["totalSize"] == count == len(ids) and count > 2000, f"{count} contacts")
    deleted_too = sf.query_all("SELECT Id FROM Contact", include_deleted=True)
    check("queryAll", deleted_too["totalSize"] >= count, f"{deleted_too['totalSize']} rows")

    accounts = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    rows = 0
    pages = 0
    for page in sf.bulk2.Account.query("SELECT Id, Name, Owner.Name, SystemModstamp FROM Account", max_records=5000, wait=0):
        reader = csv.DictReader(io.StringIO(page))
        for row in reader:
            assert row["Id"].startswith("001") and len(row["Id"]) == 18, row
            rows += 1
        pages += 1
    check("bulk2 query", rows == accounts and accounts >= 10000, f"{rows} records in {pages} pages")

    now = datetime.datetime.now(datetime.timezone.utc).replace(second=0, microsecond=0)
    updated = sf.Account.updated(now - datetime.timedelta(days=29), now)
    check("getUpdated", isinstance(updated["ids"], list) and "latestDateCovered" in updated, f"{len(updated['ids'])} ids")
    deleted = sf.Account.deleted(now - datetime.timedelta(days=14), now)
    check("getDeleted", isinstance(deleted["deletedRecords"], list) and "earliestDateAvailable" in deleted,
          f"{len(deleted['deletedRecords'])} deleted")


if __name__ == "__main__":
    main()
