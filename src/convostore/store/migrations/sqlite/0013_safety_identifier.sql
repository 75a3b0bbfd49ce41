-- The safety_identifier a client gave when it created the conversation (CONTRACT.md D22,
-- openai-python >= 3.60): at most 64 characters, or NULL. Stored with the conversation,
-- shown to operators (export, console, the list extension), never part of the wire
-- Conversation object.
ALTER TABLE conversations ADD COLUMN safety_identifier TEXT;
