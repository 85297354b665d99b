// The emails the service sends, each with a plain-text and an HTML part, from
// the Eta templates in views/mail/ (one pair per kind; the HTML parts share a
// layout). The HTML part escapes what it shows; the text part is text.
//
// What an email shows comes from the service and the address it goes to, never
// from what an account wrote about itself (its name): a signup or an email
// change can aim an email at anyone's address, and must not carry a stranger's
// words there.
import { Eta } from 'eta'
import type { MailKind } from '../repositories/mail-outbox.js'
import { VIEWS_DIR } from './views.js'

export interface MailContent {
  subject: string
  text: string
  html: string
}

export interface MailData {
  productName: string
  /** The address the email goes to. */
  email: string
  /** The link to open (emails that have one). */
  link?: string
  /** How long the link works, in words ("30 minutes"). */
  validFor?: string
  /** The address an email change asks for (the notice to the old address). */
  newEmail?: string
}

const SUBJECTS: Record<MailKind, (productName: string) => string> = {
  password_reset: (name) => `Reset your ${name} password`,
  email_verification: (name) => `Confirm your email address for ${name}`,
  email_change: (name) => `Confirm your new email address for ${name}`,
  email_change_notice: (name) => `Your ${name} email address is about to change`
}

/** "30 minutes", "24 hours", "90 seconds": a duration as an email says it. */
export function inWords(ms: number): string {
  const seconds = Math.round(ms / 1000)
  const unit = (count: number, name: string) => `${count} ${name}${count === 1 ? '' : 's'}`
  if (seconds % 3600 === 0) return unit(seconds / 3600, 'hour')
  if (seconds % 60 === 0) return unit(seconds / 60, 'minute')
  return unit(seconds, 'second')
}

export function createMailTemplates() {
  const views = `${VIEWS_DIR}mail`
  const html = new Eta({ views, autoEscape: true, cache: true })
  const text = new Eta({ views, autoEscape: false, autoTrim: false, cache: true })
  return {
    render(kind: MailKind, data: MailData): MailContent {
      const subject = SUBJECTS[kind](data.productName)
      return {
        subject,
        text: text.render(`./${kind}.txt.eta`, data),
        html: html.render(`./${kind}.html.eta`, { ...data, subject })
      }
    }
  }
}

export type MailTemplates = ReturnType<typeof createMailTemplates>
