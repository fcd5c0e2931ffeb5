/**
 * A Server-Sent Events parser over a fetch response body (WHATWG HTML "Parsing an event
 * stream"): lines end in CRLF, LF or CR; `event`, `data`, `id` and `retry` fields; an event
 * is dispatched at a blank line when it has data.
 */

export interface ServerSentEvent {
  /** `event` field, `message` when absent */
  event: string;
  /** the `data` lines joined with `\n` */
  data: string;
  /** the `id` field of this event, when it had one */
  id: string | undefined;
}

/** Reads `body` to its end, calling `onEvent` for each event. Rejects when the stream errors (e.g. aborted). */
export async function readEventStream(body: ReadableStream<Uint8Array>, onEvent: (event: ServerSentEvent) => void): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let event = '';
  let data: string[] = [];
  let id: string | undefined;
  let first = true;

  const line = (text: string) => {
    if (text === '') {
      if (data.length) onEvent({ event: event || 'message', data: data.join('\n'), id });
      event = '';
      data = [];
      id = undefined;
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
    else if (field === 'id' && !value.includes('\0')) id = value;
    // `retry` is ignored: reconnection timing is the feed client's own
  };

  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      if (first && buffer.length) {
        if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
        first = false;
      }
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer.charCodeAt(i);
        if (c !== 10 && c !== 13) continue;
        // a CR at the end of the buffer may be the first half of a CRLF: wait for more
        if (c === 13 && i === buffer.length - 1) break;
        line(buffer.slice(start, i));
        if (c === 13 && buffer.charCodeAt(i + 1) === 10) i++;
        start = i + 1;
      }
      buffer = buffer.slice(start);
    }
  } finally {
    reader.releaseLock();
  }
}
