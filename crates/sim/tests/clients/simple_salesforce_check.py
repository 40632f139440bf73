"""Runs the real simple-salesforce client, unmodified, against the cairn simulator.

    python3 simple_salesforce_check.py INSTANCE_URL ACCESS_TOKEN

simple-salesforce always builds https:// URLs. Against the simulator's HTTPS (`--tls`) it runs
exactly as against Salesforce, trusting the simulator's CA through REQUESTS_CA_BUNDLE (set by
the caller); against plain HTTP the only adaptation is a requests.Session that sends those
URLs over http (the reference's "session adapter"). Every check prints one line; any failure
exits non-zero.
"""

import csv
import datetime
import hashlib
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
    # Over https the client makes its own session, as it does against Salesforce.
    session = None if instance_url.startswith("https://") else PlainHttpToLocalhost(host)
    sf = Salesforce(
        instance_url=f"https://{host}",
        session_id=token,
        version="62.0",
        session=session,
    )
    check("transport", True, "https, client unchanged" if instance_url.startswith("https://") else "http via session adapter")

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

    created = sf.Contact.create({"FirstName": "Grace", "LastName": "Hopper", "Email": "grace@example.com"})
    contact = sf.Contact.get(created["id"])
    check("create and get", created["success"] and contact["Name"] == "Grace Hopper", created["id"])
    status = sf.Contact.update(created["id"], {"Title": "Rear Admiral"})
    check("update", status == 204 and sf.Contact.get(created["id"])["Title"] == "Rear Admiral")

    inserted = sf.restful("composite/sobjects", method="POST", json={
        "allOrNone": False,
        "records": [{"attributes": {"type": "Account"}, "Name": f"Collection {i}"} for i in range(150)],
    })
    ids = [r["id"] for r in inserted if r["success"]]
    check("collections insert", len(ids) == 150, f"{len(ids)} inserted")
    updated_rows = sf.restful("composite/sobjects", method="PATCH", json={
        "allOrNone": True,
        "records": [{"attributes": {"type": "Account"}, "id": i, "Industry": "Energy"} for i in ids],
    })
    check("collections update", all(r["success"] for r in updated_rows), f"{len(updated_rows)} updated")
    energy = sf.query(
        "SELECT COUNT() FROM Account WHERE Industry = 'Energy' AND Name LIKE 'Collection %'")["totalSize"]
    check("collections wrote what they said", energy == 150, f"{energy} rows")

    version = sf.sf_version
    composite = sf.restful("composite", method="POST", json={
        "allOrNone": False,
        "compositeRequest": [
            {"method": "POST", "url": f"/services/data/v{version}/sobjects/Account",
             "referenceId": "acct", "body": {"Name": "Composite Ltd"}},
            {"method": "POST", "url": f"/services/data/v{version}/sobjects/Contact",
             "referenceId": "ct", "body": {"LastName": "Lovelace", "AccountId": "@{acct.id}"}},
            {"method": "GET", "referenceId": "back",
             "url": f"/services/data/v{version}/query?q=SELECT+AccountId+FROM+Contact+WHERE+Id='@{{ct.id}}'"},
        ],
    })
    answers = composite["compositeResponse"]
    check("composite with references",
          [a["httpStatusCode"] for a in answers] == [201, 201, 200]
          and answers[2]["body"]["records"][0]["AccountId"] == answers[0]["body"]["id"],
          f"{len(answers)} subrequests")

    nested = sf.query("SELECT Id, Name, (SELECT Id, LastName FROM Contacts) FROM Account LIMIT 50")
    parents = [r for r in nested["records"] if r["Contacts"] is not None]
    check("child subquery", len(parents) > 0 and all(
        c["attributes"]["type"] == "Contact" for r in parents for c in r["Contacts"]["records"]),
        f"{len(parents)} of {len(nested['records'])} accounts with contacts")

    # Bulk API 2.0 ingest: insert, then update with one row that must fail on its own.
    rows = [{"LastName": f"Bulk {i}", "Email": f"bulk{i}@example.com"} for i in range(120)]
    results = sf.bulk2.Contact.insert(records=rows, wait=0)
    job_id = results[0]["job_id"]
    processed = sum(r["numberRecordsProcessed"] for r in results)
    failed = sum(r["numberRecordsFailed"] for r in results)
    loaded = sf.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Bulk %'")["totalSize"]
    check("bulk2 insert", processed == 120 and failed == 0 and loaded == 120, f"{processed} processed, job {job_id}")
    successful = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_successful_records(job_id))))
    check("bulk2 successful results", len(successful) == 120 and all(
        r["sf__Created"] == "true" and r["sf__Id"].startswith("003") for r in successful), f"{len(successful)} rows")
    changes = [{"Id": r["sf__Id"], "Title": "Imported"} for r in successful[:10]]
    changes.append({"Id": "003000000000000AAA", "Title": "Nobody"})
    results = sf.bulk2.Contact.update(records=changes, wait=0)
    job_id = results[0]["job_id"]
    failures = list(csv.DictReader(io.StringIO(sf.bulk2.Contact.get_failed_records(job_id))))
    titled = sf.query("SELECT COUNT() FROM Contact WHERE Title = 'Imported'")["totalSize"]
    check("bulk2 update with a failing row",
          results[0]["numberRecordsFailed"] == 1 and len(failures) == 1 and failures[0]["sf__Error"] and titled == 10,
          f"{titled} updated, {len(failures)} failed: {failures[0]['sf__Error'] if failures else ''}")

    # Files: a body read through the client's own session as raw bytes, whose MD5 the record
    # gives; links between files and records listed without a filter, as Salesforce lists them
    # to a user with "Query All Files" (the simulator's API user), and by their own Ids.
    version = sf.query("SELECT Id, VersionData, Checksum, ContentSize FROM ContentVersion LIMIT 1")["records"][0]
    body = sf.session.get(f"https://{host}{version['VersionData']}", headers=sf.headers)
    check("file body",
          body.status_code == 200 and len(body.content) == version["ContentSize"]
          and hashlib.md5(body.content).hexdigest() == version["Checksum"],
          f"{len(body.content)} bytes")
    links = sf.query("SELECT Id, ContentDocumentId FROM ContentDocumentLink")
    check("ContentDocumentLink listed whole with Query All Files", links["totalSize"] > 0,
          f"{links['totalSize']} links")
    first_link = links["records"][0]["Id"]
    by_id = sf.query(f"SELECT ContentDocumentId FROM ContentDocumentLink WHERE Id = '{first_link}'")
    check("ContentDocumentLink read back by its Id", by_id["totalSize"] == 1, first_link)

    sf.Contact.delete(created["id"])
    gone = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{created['id']}'", include_deleted=True)
    check("delete goes to the recycle bin", gone["records"][0]["IsDeleted"] is True)


if __name__ == "__main__":
    main()
