/**
 * The XML parser node-saml itself uses (@xmldom/xmldom), loaded from where node-saml finds
 * it, for the few checks of the response around the assertion (./confirm.ts). Loaded without
 * its typings on purpose: they pull the browser DOM library into the whole project's types.
 */
import { createRequire } from 'node:module';

export interface XmlElement {
  readonly nodeType: number;
  readonly localName: string | null;
  readonly namespaceURI: string | null;
  readonly textContent: string | null;
  readonly childNodes: ArrayLike<XmlElement>;
  getAttribute(name: string): string | null;
}

interface Parser {
  parseFromString(xml: string, mimeType: string): { documentElement: XmlElement | null } | undefined;
}

const fromNodeSaml = createRequire(createRequire(import.meta.url).resolve('@node-saml/node-saml'));
const { DOMParser } = fromNodeSaml('@xmldom/xmldom') as { DOMParser: new (options: { errorHandler: Record<string, () => void> }) => Parser };

/** The document element of `xml`, or undefined when it is not well-formed XML. */
export function parseXml(xml: string): XmlElement | undefined {
  let failed = false;
  const fail = () => {
    failed = true;
  };
  try {
    const doc = new DOMParser({ errorHandler: { warning: () => {}, error: fail, fatalError: fail } }).parseFromString(xml, 'text/xml');
    return failed ? undefined : (doc?.documentElement ?? undefined);
  } catch {
    return undefined;
  }
}

/** The element children of `parent` named `name` in namespace `ns`. */
export function childElements(parent: XmlElement, ns: string, name: string): XmlElement[] {
  return Array.from(parent.childNodes).filter((n) => n.nodeType === 1 && n.localName === name && n.namespaceURI === ns);
}
