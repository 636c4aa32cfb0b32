<?xml version="1.0" encoding="UTF-8"?>
<!--
  pressroom feed stylesheet: a feed opened in a browser reads as a page (RSS 2.0 and Atom 1.0).
  Feed readers ignore it. Override it by putting your own feed.xsl in your templates/ folder.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes"
      doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:variable name="description" select="/rss/channel/description | /atom:feed/atom:subtitle"/>
  <xsl:variable name="home" select="/rss/channel/link | /atom:feed/atom:link[@rel='alternate']/@href"/>
  <xsl:variable name="self" select="/rss/channel/atom:link[@rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href"/>

  <xsl:template match="/">
    <html lang="{/rss/channel/language | /atom:feed/@xml:lang}">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:apply-templates select="$title"/> (feed)</title>
        <style>
          body { font: 17px/1.55 Georgia, "Times New Roman", serif; color: #1d1d1f; background: #fafaf7;
                 max-width: 42rem; margin: 0 auto; padding: 2rem 1.25rem 4rem; }
          .about { font: 15px/1.5 system-ui, sans-serif; background: #fff6d9; border: 1px solid #ecd98f;
                   border-radius: 8px; padding: .9rem 1.1rem; margin-bottom: 2rem; }
          .about code { background: #fff; padding: .1rem .35rem; border-radius: 4px; word-break: break-all; }
          h1 { font-size: 1.9rem; line-height: 1.2; margin: 0 0 .25rem; }
          h1 + p { color: #555; margin-top: 0; }
          article { border-top: 1px solid #e3e3df; padding: 1.1rem 0; }
          article h2 { font-size: 1.2rem; margin: 0 0 .3rem; }
          article a { color: #0b5cad; text-decoration: none; }
          article a:hover { text-decoration: underline; }
          .meta { font: 13px system-ui, sans-serif; color: #6b6b6b; margin: 0 0 .4rem; }
          @media (prefers-color-scheme: dark) {
            body { background: #141414; color: #e8e8e3; }
            .about { background: #2b2714; border-color: #5c5222; }
            .about code { background: #141414; }
            article { border-color: #333; }
            article a { color: #7db7ff; }
            h1 + p, .meta { color: #a8a8a2; }
          }
        </style>
      </head>
      <body>
        <p class="about">
          This is a <strong>web feed</strong>. Copy its address into your feed reader to follow
          new articles: <code><xsl:value-of select="$self"/></code>
        </p>
        <h1><a href="{$home}" style="color: inherit; text-decoration: none"><xsl:apply-templates select="$title"/></a></h1>
        <p><xsl:apply-templates select="$description"/></p>
        <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
      </body>
    </html>
  </xsl:template>

  <xsl:template match="item">
    <article>
      <h2><a href="{link}"><xsl:value-of select="title"/></a></h2>
      <p class="meta">
        <xsl:value-of select="substring(pubDate, 6, 11)"/>
        <xsl:for-each select="dc:creator">
          <xsl:text> · </xsl:text><xsl:value-of select="."/>
        </xsl:for-each>
      </p>
      <!-- description is HTML (the summary, escaped); browsers without d-o-e show it escaped -->
      <p><xsl:value-of select="description" disable-output-escaping="yes"/></p>
    </article>
  </xsl:template>

  <xsl:template match="atom:entry">
    <article>
      <h2><a href="{atom:link[not(@rel) or @rel='alternate']/@href}"><xsl:apply-templates select="atom:title"/></a></h2>
      <p class="meta">
        <xsl:value-of select="substring(atom:published, 1, 10)"/>
        <xsl:for-each select="atom:author/atom:name">
          <xsl:text> · </xsl:text><xsl:value-of select="."/>
        </xsl:for-each>
      </p>
      <p><xsl:apply-templates select="atom:summary"/></p>
    </article>
  </xsl:template>

  <!-- Atom text constructs: type="html" holds escaped HTML -->
  <xsl:template match="atom:title[@type='html'] | atom:subtitle[@type='html'] | atom:summary[@type='html']">
    <xsl:value-of select="." disable-output-escaping="yes"/>
  </xsl:template>
  <xsl:template match="atom:title | atom:subtitle | atom:summary">
    <xsl:value-of select="."/>
  </xsl:template>
</xsl:stylesheet>
