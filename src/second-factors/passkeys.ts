/**
 * Passkeys (WebAuthn) as a second factor, through @simplewebauthn/server. The relying party is
 * the issuer: its host is the RP ID, its origin the only origin accepted. Challenges are made
 * here and kept by the caller server-side (single-use); the browser's answer is checked against
 * the one kept, never against anything the browser sends back about itself.
 */
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type AuthenticatorTransportFuture,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import { z } from 'zod';
import type { Passkey } from '../accounts/second-factors.js';

const TIMEOUT_MS = 120_000;

/** The browser's `credential.toJSON()`, as much as is checked before the library looks at it. */
const credentialJson = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_-]{1,1024}$/),
    rawId: z.string().max(2048),
    type: z.literal('public-key'),
    response: z.record(z.string(), z.unknown()),
    clientExtensionResults: z.record(z.string(), z.unknown()).optional().default({}),
    authenticatorAttachment: z.string().max(32).optional(),
  })
  .passthrough();

/** Parses the posted credential (JSON text); undefined when it is not one. */
export function parseCredential(text: unknown): z.infer<typeof credentialJson> | undefined {
  if (typeof text !== 'string' || text.length > 16_384) return undefined;
  try {
    const parsed = credentialJson.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export class RelyingParty {
  readonly rpID: string;
  readonly origin: string;

  constructor(
    issuer: string,
    private readonly name: string,
  ) {
    const url = new URL(issuer);
    this.rpID = url.hostname;
    this.origin = url.origin;
  }

  registrationOptions(account: { id: string; username: string }, existing: readonly Passkey[]): Promise<PublicKeyCredentialCreationOptionsJSON> {
    return generateRegistrationOptions({
      rpName: this.name,
      rpID: this.rpID,
      userName: account.username,
      userID: new TextEncoder().encode(account.id),
      attestationType: 'none',
      timeout: TIMEOUT_MS,
      excludeCredentials: existing.map((p) => ({ id: p.id, transports: p.transports as AuthenticatorTransportFuture[] })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'preferred' },
    });
  }

  /** The new passkey, or undefined when the answer does not check out. */
  async register(response: unknown, challenge: string, name: string): Promise<Passkey | undefined> {
    try {
      const result = await verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpID,
        requireUserVerification: false,
      });
      if (!result.verified) return undefined;
      const { credential } = result.registrationInfo;
      return {
        id: credential.id,
        publicKey: Buffer.from(credential.publicKey).toString('base64url'),
        counter: credential.counter,
        transports: (credential.transports ?? []).slice(0, 10),
        name,
        createdAt: Date.now(),
      };
    } catch {
      return undefined;
    }
  }

  authenticationOptions(passkeys: readonly Passkey[]): Promise<PublicKeyCredentialRequestOptionsJSON> {
    return generateAuthenticationOptions({
      rpID: this.rpID,
      timeout: TIMEOUT_MS,
      userVerification: 'preferred',
      allowCredentials: passkeys.map((p) => ({ id: p.id, transports: p.transports as AuthenticatorTransportFuture[] })),
    });
  }

  /** Which of `passkeys` answered the challenge, and its new counter; undefined when none did. */
  async authenticate(response: unknown, challenge: string, passkeys: readonly Passkey[]): Promise<{ id: string; counter: number } | undefined> {
    const answer = response as AuthenticationResponseJSON;
    const passkey = passkeys.find((p) => p.id === answer.id);
    if (!passkey) return undefined;
    try {
      const result = await verifyAuthenticationResponse({
        response: answer,
        expectedChallenge: challenge,
        expectedOrigin: this.origin,
        expectedRPID: this.rpID,
        requireUserVerification: false,
        credential: {
          id: passkey.id,
          publicKey: new Uint8Array(Buffer.from(passkey.publicKey, 'base64url')),
          counter: passkey.counter,
          transports: passkey.transports as AuthenticatorTransportFuture[],
        },
      });
      return result.verified ? { id: passkey.id, counter: result.authenticationInfo.newCounter } : undefined;
    } catch {
      return undefined;
    }
  }
}
