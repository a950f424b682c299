import { createParser } from 'eventsource-parser'

/** Reads a text/event-stream body, calling `onEvent` with each event's `data`, until it ends. */
export async function readEvents(
  body: ReadableStream<Uint8Array>,
  onEvent: (data: string, id: string | undefined) => void,
): Promise<void> {
  const parser = createParser({ onEvent: (event) => onEvent(event.data, event.id) })
  const decoder = new TextDecoder()
  const reader = body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    parser.feed(decoder.decode(value, { stream: true }))
  }
}
