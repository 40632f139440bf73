"""zeep, a general SOAP client, calls the simulator's partner API unchanged but for the URL.

The WSDL below is the part of Salesforce's partner WSDL (urn:partner.soap.sforce.com) that
`undelete` uses: the same namespace, element and type names, sequences and nillability. zeep
builds the envelope from it and checks the answer against it, so a result out of shape fails
here as it would against Salesforce.

Usage: zeep_undelete_check.py SOAP_URL SESSION_ID DELETED_ID LIVE_ID
"""
import sys
import tempfile

import zeep
from zeep.exceptions import Fault

WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<definitions targetNamespace="urn:partner.soap.sforce.com"
    xmlns="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/"
    xmlns:xsd="http://www.w3.org/2001/XMLSchema"
    xmlns:tns="urn:partner.soap.sforce.com"
    xmlns:fns="urn:fault.partner.soap.sforce.com">
  <types>
    <schema elementFormDefault="qualified" xmlns="http://www.w3.org/2001/XMLSchema"
        targetNamespace="urn:partner.soap.sforce.com">
      <simpleType name="ID">
        <restriction base="xsd:string">
          <length value="18"/>
          <pattern value="[a-zA-Z0-9]{18}"/>
        </restriction>
      </simpleType>
      <element name="SessionHeader">
        <complexType><sequence><element name="sessionId" type="xsd:string"/></sequence></complexType>
      </element>
      <complexType name="Error">
        <sequence>
          <element name="fields" type="xsd:string" nillable="true" minOccurs="0" maxOccurs="unbounded"/>
          <element name="message" type="xsd:string"/>
          <element name="statusCode" type="xsd:string"/>
        </sequence>
      </complexType>
      <complexType name="UndeleteResult">
        <sequence>
          <element name="errors" type="tns:Error" minOccurs="0" maxOccurs="unbounded"/>
          <element name="id" type="tns:ID" nillable="true"/>
          <element name="success" type="xsd:boolean"/>
        </sequence>
      </complexType>
      <element name="undelete">
        <complexType><sequence>
          <element name="ids" type="tns:ID" minOccurs="0" maxOccurs="200"/>
        </sequence></complexType>
      </element>
      <element name="undeleteResponse">
        <complexType><sequence>
          <element name="result" type="tns:UndeleteResult" minOccurs="0" maxOccurs="unbounded"/>
        </sequence></complexType>
      </element>
    </schema>
    <schema elementFormDefault="qualified" xmlns="http://www.w3.org/2001/XMLSchema"
        targetNamespace="urn:fault.partner.soap.sforce.com">
      <complexType name="ApiFault">
        <sequence>
          <element name="exceptionCode" type="xsd:string"/>
          <element name="exceptionMessage" type="xsd:string"/>
        </sequence>
      </complexType>
      <complexType name="UnexpectedErrorFault">
        <complexContent><extension base="fns:ApiFault"/></complexContent>
      </complexType>
      <element name="UnexpectedErrorFault" type="fns:UnexpectedErrorFault"/>
    </schema>
  </types>
  <message name="Header"><part element="tns:SessionHeader" name="SessionHeader"/></message>
  <message name="undeleteRequest"><part element="tns:undelete" name="parameters"/></message>
  <message name="undeleteResponse"><part element="tns:undeleteResponse" name="parameters"/></message>
  <message name="UnexpectedErrorFault"><part element="fns:UnexpectedErrorFault" name="fault"/></message>
  <portType name="Soap">
    <operation name="undelete">
      <input message="tns:undeleteRequest"/>
      <output message="tns:undeleteResponse"/>
      <fault message="tns:UnexpectedErrorFault" name="UnexpectedErrorFault"/>
    </operation>
  </portType>
  <binding name="SoapBinding" type="tns:Soap">
    <soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <operation name="undelete">
      <soap:operation soapAction=""/>
      <input><soap:header use="literal" message="tns:Header" part="SessionHeader"/><soap:body parts="parameters" use="literal"/></input>
      <output><soap:body use="literal"/></output>
      <fault name="UnexpectedErrorFault"><soap:fault name="UnexpectedErrorFault" use="literal"/></fault>
    </operation>
  </binding>
  <service name="SforceService">
    <port binding="tns:SoapBinding" name="Soap">
      <soap:address location="https://login.salesforce.com/services/Soap/u/65.0"/>
    </port>
  </service>
</definitions>
"""


def main():
    url, session, deleted, live = sys.argv[1:5]
    with tempfile.NamedTemporaryFile("w", suffix=".wsdl", delete=False) as f:
        f.write(WSDL)
    client = zeep.Client(f.name)
    service = client.create_service("{urn:partner.soap.sforce.com}SoapBinding", url)
    header = {"SessionHeader": {"sessionId": session}}

    results = service.undelete(ids=[deleted, live], _soapheaders=header)
    assert len(results) == 2, results
    assert results[0].success is True and results[0].id == deleted, results[0]
    assert results[1].success is False and results[1].id is None, results[1]
    assert results[1].errors[0].statusCode == "UNDELETE_FAILED", results[1]
    print("ok   undelete: one back with its Id, one refused with UNDELETE_FAILED")

    try:
        service.undelete(ids=[deleted], _soapheaders={"SessionHeader": {"sessionId": "nonsense"}})
        raise AssertionError("a bad session was accepted")
    except Fault as fault:
        assert fault.code.endswith("INVALID_SESSION_ID"), fault.code
        print("ok   a bad session is a fault: " + fault.code)


if __name__ == "__main__":
    main()
